// Package serve runs the emulators' HTTPS servers: until ctx ends, then a
// graceful shutdown that waits for the requests in flight.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// shutdownGrace bounds the wait for in-flight requests.
const shutdownGrace = 5 * time.Second

// TLS serves h on l with tlsConfig until ctx ends. beforeShutdown, if set,
// runs first (to close clients' idle connections, say).
func TLS(ctx context.Context, l net.Listener, h http.Handler, tlsConfig *tls.Config, log *slog.Logger, beforeShutdown func()) error {
	hs := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	stop := make(chan struct{})    // Serve returned on its own
	stopped := make(chan struct{}) // Shutdown finished, or was not needed
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if beforeShutdown != nil {
				beforeShutdown()
			}
			_ = hs.Shutdown(sctx)
		case <-stop:
		}
	}()
	err := hs.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as Shutdown starts; wait for in-flight requests.
		<-stopped
		return nil
	}
	close(stop)
	<-stopped
	return err
}
