// Package keyvaulttest starts the Key Vault emulator for Go tests, on a free
// loopback port, next to an Entra emulator, stopped when the test ends.
package keyvaulttest

import (
	"context"
	"net"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/keyvault"
)

// Start serves a vault configured by cfg and returns it. BaseURL is set to
// the port it listens on; Authority defaults to entraSrv's base URL,
// TenantID to [entra.HomeTenantID] and HTTPClient to entraSrv.HTTPClient().
// It serves entraSrv's loopback certificate, so clients that trust the
// Entra emulator (its HTTPClient) trust the vault too. Point azsecrets at
// BaseURL with DisableChallengeResourceVerification set.
func Start(t testing.TB, entraSrv *entra.Server, cfg keyvault.Config) *keyvault.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("keyvaulttest: listen: %v", err)
	}
	cfg.BaseURL = "https://" + l.Addr().String()
	if cfg.Authority == "" {
		cfg.Authority = entraSrv.BaseURL()
	}
	if cfg.TenantID == "" {
		cfg.TenantID = entra.HomeTenantID
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = entraSrv.HTTPClient()
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := keyvault.New(ctx, cfg)
	if err != nil {
		cancel()
		l.Close()
		t.Fatalf("keyvaulttest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ctx, l, entraSrv.TLSConfig()) }()
	t.Cleanup(func() {
		// Clients share entraSrv's transport: closing its idle connections
		// lets the HTTP/2 server shut down without waiting for them.
		entraSrv.HTTPClient().CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("keyvaulttest: serve: %v", err)
		}
	})
	return srv
}
