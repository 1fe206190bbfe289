// Command funcapp is an Azure Functions custom handler that protects one
// route (hello/function.json) with entraauth and calls a downstream API
// On-Behalf-Of the signed-in user. Settings follow the Azure SDK where it
// has one: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (the app
// registration, as azidentity's EnvironmentCredential reads them) and
// AZURE_AUTHORITY_HOST; DOWNSTREAM_URL and DOWNSTREAM_SCOPE are its own; the
// host sets FUNCTIONS_CUSTOMHANDLER_PORT.
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/handler/problem"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The host reads stdout as Information and stderr as Error: split by level.
	slog.SetDefault(slog.New(funcapp.NewLogHandler(os.Stdout, os.Stderr, nil)))
	if err := run(ctx, downstream.NewHTTPClient()); err != nil {
		slog.Error("hello stopped", "error", err.Error())
		os.Exit(1)
	}
}

// run serves until ctx ends; hc makes every outbound call.
func run(ctx context.Context, hc *http.Client) error {
	authority, tenant, clientID := entraauth.AuthorityFromEnv(), os.Getenv("AZURE_TENANT_ID"), os.Getenv("AZURE_CLIENT_ID")
	v, err := entraauth.New(ctx, authority, entraauth.Config{ClientID: clientID, TenantIDs: []string{tenant}, HTTPClient: hc})
	if err != nil {
		return err
	}
	secret, err := downstream.ClientSecret(os.Getenv("AZURE_CLIENT_SECRET")) // in Azure: FederatedManagedIdentity
	if err != nil {
		return err
	}
	tokens, err := downstream.New(downstream.Config{Authority: authority, HomeTenantID: tenant, ClientID: clientID, Credential: secret, HTTPClient: hc})
	if err != nil {
		return err
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := entraauth.FromContext(r.Context())
		tok, err := tokens.OnBehalfOfUser(r.Context(), user, os.Getenv("DOWNSTREAM_SCOPE"))
		if challenge, ok := downstream.Challenge(err, authority, user.TenantID, clientID); ok {
			w.Header().Set("WWW-Authenticate", challenge) // consent or MFA: the client signs in again
			problem.Error(w, http.StatusUnauthorized, "the downstream API needs the user: "+err.Error())
			return
		} else if err != nil {
			problem.Error(w, http.StatusBadGateway, "no token for the downstream API")
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, os.Getenv("DOWNSTREAM_URL"), nil)
		tok.SetAuthHeader(req)
		resp, err := hc.Do(req)
		if err != nil {
			problem.Error(w, http.StatusBadGateway, "the downstream API did not answer")
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
	})
	rt := funcapp.NewRouter()
	rt.Handle("GET", "/api/hello", v.Protect(hello, entraauth.Scopes("access_as_user")))
	cfg, err := funcapp.ConfigFromEnv(nil)
	if err != nil {
		return err
	}
	return funcapp.Serve(ctx, cfg, rt)
}
