// Command notification is the Notification Service's custom handler. It
// only wires; the service is internal/notifyapi.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/store/backend"
)

func main() { appmain.Main("notification", build) }

func build(ctx context.Context, log *slog.Logger) (http.Handler, io.Closer, error) {
	cfg, err := notifyapi.ConfigFromEnv(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	st, err := backend.Open(ctx, nil, cfg.DataDir, "notification")
	if err != nil {
		return nil, nil, err
	}
	app, err := notifyapi.New(ctx, cfg, st, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	appmain.Warm(ctx, log, app.Warm)
	return app.Handler(), st, nil
}
