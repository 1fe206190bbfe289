// Package appmain is what the three Function App binaries share in main:
// JSON logs, Info and Debug on stdout and Warn and Error on stderr (the
// Functions host ships both to Application Insights, stderr at Error or
// Warning), SIGTERM handling, the custom-handler server.
package appmain

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/telemetry"
)

// Build wires an app: it returns the handler to serve and what to close
// when serving ends.
type Build func(ctx context.Context, log *slog.Logger) (http.Handler, io.Closer, error)

// Main runs the app named name until SIGTERM or Ctrl-C, and exits 1 if it
// could not start or serve, after one Error record (on stderr) saying why.
// It exits 0 only after a signal: the Functions host does not restart a
// worker that exits 0 (WorkerProcess.cs), so any other exit must be an
// error for the host to restart it.
func Main(name string, build Build) {
	log := slog.New(funcapp.NewLogHandler(os.Stdout, os.Stderr, nil)).With("app", name)
	slog.SetDefault(log)
	if err := run(name, log, build); err != nil {
		log.Error(name+" stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(name string, log *slog.Logger, build Build) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(log)
	stopProfile, err := startCPUProfile(log)
	if err != nil {
		return err
	}
	defer stopProfile()
	if _, err := warmUpOn(); err != nil {
		return err
	}
	server, err := funcapp.ConfigFromEnv(nil)
	if err != nil {
		return err
	}
	stopTelemetry, err := startTelemetry(ctx, name, log)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	h, closer, err := build(ctx, log)
	if err != nil {
		return err
	}
	if closer != nil {
		defer closer.Close()
	}
	server.Logger = log
	setCORS(&server)
	return funcapp.Serve(ctx, server, h)
}

// telemetryFlushTimeout bounds the flush of buffered spans and metrics when
// the app stops on a signal. (The Functions host stops a handler with
// SIGKILL, so what is buffered then is lost: docs/telemetry.md.)
const telemetryFlushTimeout = 5 * time.Second

// startTelemetry sets up OpenTelemetry (internal/telemetry: W3C Trace
// Context always, OTLP export when its settings are there) and returns
// what flushes it.
func startTelemetry(ctx context.Context, name string, log *slog.Logger) (stop func(), err error) {
	shutdown, err := telemetry.Setup(ctx, name)
	if err != nil {
		return nil, err
	}
	traces, metrics := telemetry.Exporting(os.Getenv)
	if traces || metrics {
		log.Info("telemetry: exporting with OTLP", "traces", traces, "metrics", metrics)
	} else {
		log.Info("telemetry: export off (no " + telemetry.EnvEndpoint + "); trace context is still propagated")
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			log.Warn("telemetry: flush on stop failed", "error", err.Error())
		}
	}, nil
}

// setCORS sets what a preflight allows. Locally (ALLOWED_ORIGINS set) the
// SPA calls the Task API, whose routes take PATCH and DELETE, conditional
// writes (If-Match), idempotency keys and answer with ETag and Location.
func setCORS(cfg *funcapp.Config) {
	cfg.CORSMethods = []string{"GET", "POST", "PATCH", "DELETE", "OPTIONS"}
	cfg.CORSHeaders = []string{"Authorization", "Content-Type", "If-Match", "Idempotency-Key"}
	cfg.CORSExposedHeaders = []string{"ETag", "WWW-Authenticate", "Location"}
}
