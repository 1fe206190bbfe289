package entraauth

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/time/rate"

	"github.com/handoff-dev/handoff/handler/internal/flight"
)

// Limits of the key source.
const (
	// maxJWKS bounds a key set document; Entra's is a few KiB.
	maxJWKS = 1 << 20
	// keyRefreshJitter: each periodic refresh is due up to this fraction of
	// the interval early, so a fleet started together does not fetch
	// together.
	keyRefreshJitter = 0.1
)

// keySource serves Entra's signing keys, fetched from one fixed JWKS URL.
// Requests read an immutable snapshot of the keys. The key set is fetched
// again when a token names an unknown kid, and when the snapshot is older
// than the refresh interval (jittered), so a key the authority retires
// stops verifying within that interval.
//
// Every fetch after the first goes through one token bucket (one fetch per
// minInterval, no burst) and one single flight: whatever floods it (a
// burst of random kids, say) the JWKS endpoint sees at most one fetch per
// minInterval, and a real new key validates within minInterval. Requests
// that find the bucket empty use the keys they have; when a fetch fails
// the keys already held keep working.
type keySource struct {
	url   string
	hc    *http.Client
	now   func() time.Time
	every time.Duration // periodic refresh interval

	limiter  *rate.Limiter          // read with now(), so tests can drive it
	flight   flight.Group[struct{}] // fetches outlive the request that started them, bounded by bg
	snap     atomic.Pointer[keySnapshot]
	periodic atomic.Bool // a request is waiting for the periodic refresh
}

type keySnapshot struct {
	keys map[string]*rsa.PublicKey
	due  time.Time // when the periodic refresh is due, by now()
}

// newKeySource loads the keys once, with ctx bounding that first fetch
// (discovery attempts are spaced already, so it takes no token from the
// bucket); bg bounds the later fetches.
func newKeySource(ctx, bg context.Context, jwksURL string, hc *http.Client, minInterval, every time.Duration, now func() time.Time) (*keySource, error) {
	k := &keySource{url: jwksURL, hc: hc, now: now, every: every,
		limiter: rate.NewLimiter(rate.Every(minInterval), 1)}
	k.flight.Base, k.flight.Timeout = bg, refreshTimeout
	set, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.store(set)
	return k, nil
}

// key returns the RSA public key for kid.
func (k *keySource) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s := k.snap.Load()
	if pub := s.keys[kid]; pub != nil {
		if k.now().Before(s.due) || !k.periodic.CompareAndSwap(false, true) {
			return pub, nil
		}
		// The periodic refresh is due: the first request to see it waits
		// for it, so a retired key is not trusted past the interval; the
		// others use the keys held meanwhile, so a slow JWKS endpoint
		// delays one request, not all.
		err := k.refresh(ctx)
		k.periodic.Store(false)
		if err != nil {
			return nil, err
		}
	} else if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if pub := k.snap.Load().keys[kid]; pub != nil {
		return pub, nil
	}
	return nil, invalid("the token's signing key (kid) is not one of the authority's keys")
}

// refresh fetches the key set again unless the bucket is empty; concurrent
// callers share one fetch. A caller's ctx bounds only its own wait; the
// fetch runs to completion (bounded by refreshTimeout). A failed fetch
// keeps the snapshot: the caller then uses the keys it has.
func (k *keySource) refresh(ctx context.Context) error {
	_, err := k.flight.Do(ctx, "jwks", func(fctx context.Context) (struct{}, error) {
		if !k.limiter.AllowN(k.now(), 1) {
			return struct{}{}, nil
		}
		set, err := k.fetch(fctx)
		if err == nil {
			k.store(set)
		}
		return struct{}{}, err
	})
	if err != nil && ctx.Err() != nil {
		// The caller gave up waiting; the fetch goes on for the others.
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	// A failed fetch keeps the snapshot: the caller uses the keys it has.
	return nil
}

// fetch reads and parses the key set, at most maxJWKS bytes of it.
func (k *keySource) fetch(ctx context.Context) (jwk.Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKS {
		return nil, fmt.Errorf("GET %s: the key set is larger than %d bytes", k.url, maxJWKS)
	}
	return jwk.Parse(b)
}

// store takes a snapshot of set's RSA signature keys, due for a refresh
// after the interval less up to keyRefreshJitter of it.
func (k *keySource) store(set jwk.Set) {
	keys := map[string]*rsa.PublicKey{}
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		var pub rsa.PublicKey
		// Keys of other types, or for other uses, are skipped: only RSA
		// signature keys can verify an RS256 token.
		if key.KeyType() != "RSA" || (key.KeyUsage() != "" && key.KeyUsage() != "sig") || key.Raw(&pub) != nil {
			continue
		}
		keys[key.KeyID()] = &pub
	}
	early := time.Duration(rand.Float64() * keyRefreshJitter * float64(k.every))
	k.snap.Store(&keySnapshot{keys: keys, due: k.now().Add(k.every - early)})
}
