// Command task is the Task API's custom handler: the Functions host starts
// it with FUNCTIONS_CUSTOMHANDLER_PORT and forwards HTTP requests to it.
// It only wires; the service is internal/taskapi.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/internal/appconfig"
	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/store/backend"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

func main() { appmain.Main("task", build) }

func build(ctx context.Context, log *slog.Logger) (http.Handler, io.Closer, error) {
	cfg, err := taskapi.ConfigFromEnv(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	cred, mode, err := appconfig.CredentialFromEnv(appconfig.EnvOptions{Transport: cfg.HTTPClient, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	tokens, err := downstream.New(downstream.Config{
		Authority: cfg.Authority, HomeTenantID: cfg.HomeTenantID, ClientID: cfg.ClientID, Credential: cred,
		HTTPClient: cfg.HTTPClient, OBOCacheSize: cfg.OBOCacheSize, MaxTenants: cfg.MaxTenantClients, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	st, err := backend.Open(ctx, nil, cfg.DataDir, "task")
	if err != nil {
		return nil, nil, err
	}
	app, err := taskapi.New(ctx, cfg, st, tokens, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	appmain.Warm(ctx, log, app.Warm)
	log.Info("task api configured", "credential", mode, "authority", cfg.Authority, "any_tenant", cfg.AllowAnyTenant, "tenants", cfg.TenantIDs)
	return app.Handler(), st, nil
}
