package entraauth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// maxJWKS mirrors the key source's bound on a key set document (1 MiB).
const maxJWKS = 1 << 20

// testClock is a clock the test moves; validators read it through Config.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: testNow} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func mustAccept(t *testing.T, v *entraauth.Validator, tok string) {
	t.Helper()
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("a valid token refused: %v", err)
	}
}

// TestRotatedKeyValidates: a token of a key rotated in refreshes the key
// set, then validates; the retired key stops verifying, for a token the
// validator remembers too (old was accepted before).
func TestRotatedKeyValidates(t *testing.T) {
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now})
	old := a.token(t, nil, nil)
	mustAccept(t, v, old)
	a.rotate(t, "rotated-in")
	clk.advance(entraauth.DefaultMinRefreshInterval)
	mustAccept(t, v, a.token(t, nil, nil))
	_, err := v.Validate(context.Background(), old)
	wantReason(t, err, reasonKid)
}

// TestPeriodicKeyRefresh: with no token naming a new kid, a retired key
// keeps verifying until the refresh interval less its jitter (10% at
// most) and stops at the interval, with one fetch.
func TestPeriodicKeyRefresh(t *testing.T) {
	const every = 10 * time.Minute
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now, KeyRefreshInterval: every})
	old := a.token(t, nil, nil)
	mustAccept(t, v, old)
	a.rotate(t, "rotated-in")
	start := a.jwksGets.Load()
	clk.advance(every * 9 / 10) // the earliest due time is after this
	mustAccept(t, v, old)
	if got := a.jwksGets.Load() - start; got != 0 {
		t.Fatalf("JWKS fetches before the refresh was due = %d, want 0", got)
	}
	clk.advance(every / 10) // exactly the interval: due whatever the jitter
	_, err := v.Validate(context.Background(), old)
	wantReason(t, err, reasonKid)
	if got := a.jwksGets.Load() - start; got != 1 {
		t.Errorf("JWKS fetches for the periodic refresh = %d, want 1", got)
	}
}

// TestRefreshJitterSpreadsAFleet: validators started together do not all
// refresh at the same instant: none is due before 90% of the interval,
// all are by the interval, and at 99% of it some already refreshed. Each
// is due uniformly in the last 10%, so at 99% a validator is still
// waiting with probability 0.1, all ten with probability 1e-10.
func TestRefreshJitterSpreadsAFleet(t *testing.T) {
	const every, fleet = 10 * time.Minute, 10
	a := newTestAuthority(t)
	clk := newTestClock()
	tok := a.token(t, nil, nil)
	var vs []*entraauth.Validator
	for range fleet {
		v := a.validator(t, entraauth.Config{Now: clk.Now, KeyRefreshInterval: every})
		mustAccept(t, v, tok)
		vs = append(vs, v)
	}
	validateAll := func() int64 {
		t.Helper()
		start := a.jwksGets.Load()
		for _, v := range vs {
			mustAccept(t, v, tok)
		}
		return a.jwksGets.Load() - start
	}
	clk.advance(every * 9 / 10)
	if n := validateAll(); n != 0 {
		t.Errorf("%d of %d validators refreshed before 90%% of the interval", n, fleet)
	}
	clk.advance(every * 9 / 100)
	early := validateAll()
	if early == 0 {
		t.Errorf("no validator of %d refreshed before 99%% of the interval: no jitter", fleet)
	}
	clk.advance(every / 100)
	if n := validateAll(); early+n != fleet {
		t.Errorf("%d + %d validators refreshed by the interval, want each of %d once", early, n, fleet)
	}
}

// TestPeriodicRefreshDuringOutage: when the periodic refresh fails, the
// keys held keep verifying, and the failing endpoint sees one attempt per
// minimum interval.
func TestPeriodicRefreshDuringOutage(t *testing.T) {
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now})
	tok := a.token(t, nil, nil)
	mustAccept(t, v, tok)
	a.jwksFail.Store(true)
	clk.advance(entraauth.DefaultKeyRefreshInterval)
	start := a.jwksGets.Load()
	for range 5 {
		mustAccept(t, v, tok)
	}
	if got := a.jwksGets.Load() - start; got != 1 {
		t.Errorf("JWKS attempts within one minimum interval = %d, want 1", got)
	}
	clk.advance(entraauth.DefaultMinRefreshInterval)
	mustAccept(t, v, tok)
	if got := a.jwksGets.Load() - start; got != 2 {
		t.Errorf("JWKS attempts after the minimum interval = %d, want 2", got)
	}
}

// TestCallerGivesUpOnRefresh: a request waiting for the periodic refresh
// whose context ends gets ErrUnavailable, not the keys it held: the
// refresh was due, so they may be retired.
func TestCallerGivesUpOnRefresh(t *testing.T) {
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now})
	tok := a.token(t, nil, nil)
	mustAccept(t, v, tok)
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	a.mu.Lock()
	a.jwksHold, a.jwksHeld = hold, held
	a.mu.Unlock()
	defer close(hold)
	clk.advance(entraauth.DefaultKeyRefreshInterval)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Validate(ctx, tok)
		done <- err
	}()
	<-held // the refresh is under way and the request waits for it
	cancel()
	err := <-done
	if !errors.Is(err, entraauth.ErrUnavailable) || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Errorf("a request that gave up on the refresh: %v, want ErrUnavailable (canceled)", err)
	}
}

// TestKeySetSizeBound: a key set of exactly maxJWKS bytes is read; one
// byte more is refused for its size.
func TestKeySetSizeBound(t *testing.T) {
	for size, tooLarge := range map[int]bool{maxJWKS: false, maxJWKS + 1: true} {
		a := newTestAuthority(t)
		a.jwksSize = size
		_, err := a.validator(t, entraauth.Config{}).Validate(context.Background(), a.token(t, nil, nil))
		if !tooLarge && err != nil {
			t.Errorf("a key set of %d bytes: %v", size, err)
		}
		if tooLarge {
			wantUnavailable(t, err, "larger than 1048576 bytes")
		}
	}
}
