// Command task is the Task API's custom handler: the Functions host starts
// it with FUNCTIONS_CUSTOMHANDLER_PORT and forwards HTTP requests to it.
// It only wires; the service is internal/taskapi.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("app", "task")
	slog.SetDefault(log)
	if err := run(log); err != nil {
		log.Error("task api stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	server, err := funcapp.ConfigFromEnv(nil)
	if err != nil {
		return err
	}
	cfg, err := taskapi.ConfigFromEnv(nil)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cred, mode, err := downstream.CredentialFromEnv(downstream.EnvOptions{Transport: cfg.HTTPClient, Logger: log})
	if err != nil {
		return err
	}
	tokens, err := downstream.New(downstream.Config{
		Authority: cfg.Authority, HomeTenantID: cfg.HomeTenantID, ClientID: cfg.ClientID, Credential: cred,
		HTTPClient: cfg.HTTPClient, OBOCacheSize: cfg.OBOCacheSize, MaxTenants: cfg.MaxTenantClients, Logger: log,
	})
	if err != nil {
		return err
	}
	st, err := store.OpenSQLite(filepath.Join(cfg.DataDir, "task.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	app, err := taskapi.New(ctx, cfg, st, tokens, log)
	if err != nil {
		return err
	}
	log.Info("task api configured", "credential", mode, "authority", cfg.Authority, "any_tenant", cfg.AllowAnyTenant, "tenants", cfg.TenantIDs)
	server.Logger = log
	return funcapp.Serve(ctx, server, app.Handler())
}
