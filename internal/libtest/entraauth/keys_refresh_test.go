package entraauth_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// rotateAndRetire publishes a new signing key and unpublishes the others,
// with the emulator's rotation control.
func rotateAndRetire(t *testing.T, srv *entra.Server) {
	t.Helper()
	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	if err := srv.RetireOldSigningKeys(); err != nil {
		t.Fatal(err)
	}
}

// TestPeriodicKeyRefresh: with no token naming a new kid, a retired key
// stops verifying once the key refresh interval has passed (not before its
// jittered due time), with one fetch.
func TestPeriodicKeyRefresh(t *testing.T) {
	const every = 10 * time.Minute
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now, KeyRefreshInterval: every})
	mustValidate(t, f.v, f.alice)
	rotateAndRetire(t, f.srv)
	start := jwksFetches(f.srv)

	// Before the earliest due time (jitter takes at most 10% off), the
	// snapshot is used as it is.
	clk.Advance(every * 89 / 100)
	mustValidate(t, f.v, f.alice)
	if got := jwksFetches(f.srv) - start; got != 0 {
		t.Fatalf("JWKS fetches before the refresh was due = %d, want 0", got)
	}

	clk.Advance(every * 11 / 100)
	if _, err := f.v.Validate(context.Background(), f.alice); err == nil {
		t.Fatal("a token of a retired key verified after the key refresh interval")
	}
	if got := jwksFetches(f.srv) - start; got != 1 {
		t.Errorf("JWKS fetches for the periodic refresh = %d, want 1", got)
	}
	fresh := passwordToken(t, f.srv, entra.HomeTenantID, "bob@home.handoff.test", taskAPIScope)
	mustValidate(t, f.v, fresh)
	if got := jwksFetches(f.srv) - start; got != 1 {
		t.Errorf("JWKS fetches after the new kid was known = %d, want 1", got)
	}
}

// TestPeriodicRefreshDefault: the default interval is an hour.
func TestPeriodicRefreshDefault(t *testing.T) {
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now})
	mustValidate(t, f.v, f.alice)
	rotateAndRetire(t, f.srv)
	clk.Advance(entraauth.DefaultKeyRefreshInterval * 89 / 100)
	mustValidate(t, f.v, f.alice)
	clk.Advance(entraauth.DefaultKeyRefreshInterval * 11 / 100)
	if _, err := f.v.Validate(context.Background(), f.alice); err == nil {
		t.Fatal("a token of a retired key verified an hour after it was retired")
	}
}

// TestPeriodicRefreshDuringOutage: when the periodic refresh fails, the keys
// held keep verifying, and the failing endpoint sees at most one attempt
// per minimum interval.
func TestPeriodicRefreshDuringOutage(t *testing.T) {
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now})
	mustValidate(t, f.v, f.alice)
	f.srv.FailJWKSRequests(1 << 20)
	defer f.srv.FailJWKSRequests(0)
	clk.Advance(entraauth.DefaultKeyRefreshInterval)
	start := jwksFetches(f.srv)
	for range 20 {
		mustValidate(t, f.v, f.alice)
	}
	if got := jwksFetches(f.srv) - start; got != 1 {
		t.Errorf("JWKS attempts within one minimum interval = %d, want 1", got)
	}
	clk.Advance(entraauth.DefaultMinRefreshInterval)
	mustValidate(t, f.v, f.alice)
	if got := jwksFetches(f.srv) - start; got != 2 {
		t.Errorf("JWKS attempts after the minimum interval = %d, want 2", got)
	}
}

// forgeKids returns n copies of tok naming unknown kids.
func forgeKids(t *testing.T, tok, prefix string, n int) []string {
	t.Helper()
	out := make([]string, n)
	parts := splitToken(tok)
	for i := range out {
		h := headerOf(t, tok)
		h["kid"] = prefix + itoa(i)
		out[i] = seg(t, h) + "." + parts[1] + "." + parts[2]
	}
	return out
}

// validateAll validates the tokens concurrently and counts the accepted.
func validateAll(v *entraauth.Validator, tokens []string) int64 {
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Validate(context.Background(), tok); err == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	return accepted.Load()
}

// TestRandomKidFlood: a flood of random kids costs the JWKS endpoint one
// fetch per minimum interval (a burst of 1000 when the bucket is full is
// exactly one shared fetch), and a key rotated in during the flood
// validates once the interval has passed, not 30 s later.
func TestRandomKidFlood(t *testing.T) {
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now})
	mustValidate(t, f.v, f.alice)
	start := jwksFetches(f.srv)

	clk.Advance(entraauth.DefaultMinRefreshInterval)
	if n := validateAll(f.v, forgeKids(t, f.alice, "flood-a-", 1000)); n != 0 {
		t.Fatalf("%d tokens with unknown kids accepted", n)
	}
	if got := jwksFetches(f.srv) - start; got != 1 {
		t.Fatalf("JWKS fetches for a burst of 1000 unknown kids = %d, want exactly 1", got)
	}

	// The keys rotate just after the flood used the bucket: the new key
	// waits for the next token, no longer.
	rotateAndRetire(t, f.srv)
	fresh := passwordToken(t, f.srv, entra.HomeTenantID, "bob@home.handoff.test", taskAPIScope)
	if _, err := f.v.Validate(context.Background(), fresh); err == nil {
		t.Fatal("a fetch ran within the minimum interval")
	}
	clk.Advance(entraauth.DefaultMinRefreshInterval)
	flood := append(forgeKids(t, f.alice, "flood-b-", 500), fresh)
	if n := validateAll(f.v, flood); n != 1 {
		t.Errorf("accepted %d tokens of the flood with the fresh one, want only the fresh one", n)
	}
	mustValidate(t, f.v, fresh)
	if got := jwksFetches(f.srv) - start; got != 2 {
		t.Errorf("JWKS fetches over two intervals of flood = %d, want 2", got)
	}
}

// TestRefreshConfigRefused: intervals that make no sense are refused.
func TestRefreshConfigRefused(t *testing.T) {
	for name, cfg := range map[string]entraauth.Config{
		"negative minimum interval":               {MinRefreshInterval: -time.Second},
		"negative clock skew":                     {ClockSkew: -time.Second},
		"refresh interval below the minimum":      {MinRefreshInterval: time.Minute, KeyRefreshInterval: time.Second},
		"negative refresh interval":               {KeyRefreshInterval: -time.Hour},
		"default minimum above a 1 s refresh one": {KeyRefreshInterval: time.Second},
	} {
		cfg.ClientID, cfg.TenantIDs = entra.TaskAPIClientID, allowed
		if _, err := entraauth.New(context.Background(), entraauth.DefaultAuthority, cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// gatedTransport holds key set requests until released, over the real
// transport, to model a slow JWKS endpoint.
type gatedTransport struct {
	next    http.RoundTripper
	armed   atomic.Bool
	started chan struct{} // receives when a held request arrives
	release chan struct{} // closed to let held requests through
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.armed.Load() && strings.Contains(r.URL.Path, "/keys") {
		g.started <- struct{}{}
		<-g.release
	}
	return g.next.RoundTrip(r)
}

// TestSlowPeriodicRefresh: while the periodic refresh waits on a slow JWKS
// endpoint, only the request that started it waits; the others are served
// from the keys held.
func TestSlowPeriodicRefresh(t *testing.T) {
	clk := newClock()
	srv := entratest.Start(t, entra.Config{})
	alice := passwordToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	hc := srv.HTTPClient()
	gate := &gatedTransport{next: hc.Transport, started: make(chan struct{}, 1), release: make(chan struct{})}
	v := newValidator(t, srv, entraauth.Config{Now: clk.Now, HTTPClient: &http.Client{Transport: gate, Timeout: time.Minute}})
	mustValidate(t, v, alice)

	gate.armed.Store(true)
	clk.Advance(entraauth.DefaultKeyRefreshInterval)
	first := make(chan error, 1)
	go func() {
		_, err := v.Validate(context.Background(), alice)
		first <- err
	}()
	<-gate.started // the first request is waiting for the fetch
	others := make(chan error, 1)
	go func() {
		var err error
		for range 10 {
			if _, e := v.Validate(context.Background(), alice); e != nil {
				err = e
			}
		}
		others <- err
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Errorf("requests during the refresh: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("requests during a slow periodic refresh waited for it")
	}
	close(gate.release)
	if err := <-first; err != nil {
		t.Errorf("the request that refreshed: %v", err)
	}
}
