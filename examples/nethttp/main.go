// Command nethttp is an API protected by the same library with nothing but
// net/http: for Azure Container Apps, App Service, or anywhere a Go binary
// listens on PORT. Settings follow the Azure SDK: AZURE_CLIENT_ID (the
// API's app registration), AZURE_TENANT_ID (the tenants accepted, comma
// separated) and AZURE_AUTHORITY_HOST (a sovereign cloud, or the emulator).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, nil); err != nil {
		slog.Error("nethttp stopped", "error", err.Error())
		os.Exit(1)
	}
}

// run serves until ctx ends; hc fetches the authority's keys (nil: a
// client with a 10 s timeout).
func run(ctx context.Context, hc *http.Client) error {
	v, err := entraauth.New(ctx, entraauth.AuthorityFromEnv(), entraauth.Config{
		ClientID:   os.Getenv("AZURE_CLIENT_ID"),
		TenantIDs:  strings.Split(os.Getenv("AZURE_TENANT_ID"), ","),
		HTTPClient: hc,
	})
	if err != nil {
		return err
	}
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := entraauth.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": id.Name, "username": id.PreferredUsername, "tenant": id.TenantID, "scopes": id.Scopes})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /me", v.Protect(me, entraauth.Scopes("access_as_user")))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
