// Command notification is the Notification Service's custom handler. It
// only wires; the service is internal/notifyapi.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/store"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("app", "notification")
	slog.SetDefault(log)
	if err := run(log); err != nil {
		log.Error("notification service stopped", "error", err.Error())
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
	cfg, err := notifyapi.ConfigFromEnv(nil)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	st, err := store.OpenSQLite(filepath.Join(cfg.DataDir, "notification.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	app, err := notifyapi.New(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	server.Logger = log
	return funcapp.Serve(ctx, server, app.Handler())
}
