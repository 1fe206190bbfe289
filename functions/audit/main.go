// Command audit is the Audit Service's custom handler. It only wires; the
// service is internal/auditapi.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/store/backend"
)

func main() { appmain.Main("audit", build) }

func build(ctx context.Context, log *slog.Logger) (http.Handler, io.Closer, error) {
	cfg, err := auditapi.ConfigFromEnv(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	st, err := backend.Open(ctx, nil, cfg.DataDir, "audit")
	if err != nil {
		return nil, nil, err
	}
	app, err := auditapi.New(ctx, cfg, st, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	appmain.Warm(ctx, log, app.Warm)
	return app.Handler(), st, nil
}
