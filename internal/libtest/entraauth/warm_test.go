package entraauth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

func discoveries(srv *entra.Server) int64 { return srv.Stats().Requests[entra.EndpointDiscovery] }

// TestWarmThenNoFetch: Warm fetches the metadata and the keys once; the
// first validations after it fetch nothing.
func TestWarmThenNoFetch(t *testing.T) {
	f := newFixture(t, entraauth.Config{Now: newClock().Now})
	d0, k0 := discoveries(f.srv), jwksFetches(f.srv)
	if err := f.v.Warm(context.Background()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if d, k := discoveries(f.srv)-d0, jwksFetches(f.srv)-k0; d != 1 || k != 1 {
		t.Fatalf("Warm made %d discovery and %d key set requests, want 1 and 1", d, k)
	}
	mustValidate(t, f.v, f.alice)
	if _, err := f.v.Validate(context.Background(), f.notifyB); err == nil {
		t.Fatal("a token for another API validated")
	}
	if d, k := discoveries(f.srv)-d0, jwksFetches(f.srv)-k0; d != 1 || k != 1 {
		t.Errorf("after Warm, validations fetched: %d discovery and %d key set requests in all, want 1 and 1", d, k)
	}
}

// TestWarmFailureNotFatal: a failed warm-up returns ErrUnavailable, and the
// first validation after it tries the authority again at once (the clock
// does not move, so the retry spacing of a failed Validate would refuse).
func TestWarmFailureNotFatal(t *testing.T) {
	f := newFixture(t, entraauth.Config{Now: newClock().Now})
	f.srv.FailJWKSRequests(1)
	if err := f.v.Warm(context.Background()); !errors.Is(err, entraauth.ErrUnavailable) {
		t.Fatalf("Warm with the key set failing = %v, want ErrUnavailable", err)
	}
	mustValidate(t, f.v, f.alice)

	// Without Warm, a failed first use does space the next attempt: the
	// warm-up must not change that.
	g := newFixture(t, entraauth.Config{Now: newClock().Now})
	g.srv.FailJWKSRequests(1)
	if _, err := g.v.Validate(context.Background(), g.alice); !errors.Is(err, entraauth.ErrUnavailable) {
		t.Fatalf("Validate with the key set failing = %v, want ErrUnavailable", err)
	}
	if _, err := g.v.Validate(context.Background(), g.alice); !errors.Is(err, entraauth.ErrUnavailable) {
		t.Errorf("a second Validate within the retry interval = %v, want ErrUnavailable without a new attempt", err)
	}
}

// TestWarmCancelled: a warm-up whose context ends returns, and the
// validator still works.
func TestWarmCancelled(t *testing.T) {
	f := newFixture(t, entraauth.Config{Now: newClock().Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.v.Warm(ctx); err == nil {
		t.Fatal("Warm with a cancelled context succeeded")
	}
	mustValidate(t, f.v, f.alice)
}
