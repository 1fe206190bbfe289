// Package entratest starts the Entra emulator for Go tests, on a free
// loopback port, stopped when the test ends.
package entratest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

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

// Clock is an adjustable clock for entra.Config.Now (and any other clock
// a test wants to move): real time plus an offset. Safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the real time plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock by d (negative d moves it back).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
