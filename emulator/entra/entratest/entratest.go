// Package entratest starts the Entra emulator for Go tests, on a free
// loopback port, stopped when the test ends.
package entratest

import (
	"context"
	"net"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// Start serves an emulator configured by cfg (BaseURL is set to the port it
// listens on) and returns it. Use its HTTPClient, CertPool and Authority with
// MSAL (WithInstanceDiscovery(false)) or azidentity (DisableInstanceDiscovery).
func Start(t testing.TB, cfg entra.Config) *entra.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("entratest: listen: %v", err)
	}
	cfg.BaseURL = "https://" + l.Addr().String()
	srv, err := entra.New(cfg)
	if err != nil {
		l.Close()
		t.Fatalf("entratest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("entratest: serve: %v", err)
		}
	})
	return srv
}
