package entraauth

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// keySource serves Entra's signing keys from a jwk.Cache registered on one
// fixed JWKS URL. A kid it does not know triggers at most one refresh per
// minInterval, shared by every request that missed meanwhile; when a refresh
// fails the keys already cached keep working.
type keySource struct {
	cache       *jwk.Cache
	url         string
	minInterval time.Duration
	now         func() time.Time

	mu          sync.Mutex
	lastRefresh time.Time     // of a kid-miss refresh, by now()
	inflight    chan struct{} // closed when the running refresh ends
	set         jwk.Set       // the set the keys below were read from
	keys        map[string]*rsa.PublicKey
}

func newKeySource(ctx context.Context, jwksURL string, hc *http.Client, minInterval time.Duration, now func() time.Time) (*keySource, error) {
	c := jwk.NewCache(ctx)
	// The cache's own periodic refresh runs no more often than minInterval
	// either, and at least daily, as Entra advises.
	if err := c.Register(jwksURL, jwk.WithHTTPClient(hc), jwk.WithMinRefreshInterval(max(minInterval, time.Minute)), jwk.WithRefreshInterval(24*time.Hour)); err != nil {
		return nil, err
	}
	return &keySource{cache: c, url: jwksURL, minInterval: minInterval, now: now}, nil
}

// key returns the RSA public key for kid.
func (k *keySource) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	set, err := k.cache.Get(ctx, k.url)
	if err != nil {
		return nil, fmt.Errorf("%w: keys: %v", ErrUnavailable, err)
	}
	if pub := k.lookup(set, kid); pub != nil {
		return pub, nil
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if set, err = k.cache.Get(ctx, k.url); err == nil {
		if pub := k.lookup(set, kid); pub != nil {
			return pub, nil
		}
	}
	return nil, invalid("the token's signing key (kid) is not one of the authority's keys")
}

// lookup finds kid in set, converting the set's RSA keys once per set.
func (k *keySource) lookup(set jwk.Set, kid string) *rsa.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if set != k.set {
		k.set, k.keys = set, map[string]*rsa.PublicKey{}
		for i := 0; i < set.Len(); i++ {
			key, _ := set.Key(i)
			var pub rsa.PublicKey
			// Keys of other types, or for other uses, are skipped: only RSA
			// signature keys can verify an RS256 token.
			if key.KeyType() != "RSA" || (key.KeyUsage() != "" && key.KeyUsage() != "sig") || key.Raw(&pub) != nil {
				continue
			}
			k.keys[key.KeyID()] = &pub
		}
	}
	return k.keys[kid]
}

// refresh fetches the JWKS again unless one was fetched within minInterval;
// concurrent callers wait for the same fetch. A caller's ctx bounds only its
// own wait; the fetch runs to completion for the others.
func (k *keySource) refresh(ctx context.Context) error {
	k.mu.Lock()
	if wait := k.inflight; wait != nil {
		k.mu.Unlock()
		select {
		case <-wait:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	if !k.lastRefresh.IsZero() && k.now().Sub(k.lastRefresh) < k.minInterval {
		k.mu.Unlock()
		return nil
	}
	k.lastRefresh = k.now()
	done := make(chan struct{})
	k.inflight = done
	k.mu.Unlock()

	go func() {
		defer func() {
			k.mu.Lock()
			k.inflight = nil
			k.mu.Unlock()
			close(done)
		}()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		// A failed refresh keeps the cached keys; the miss is reported as an
		// unknown key below, and the next miss after minInterval tries again.
		_, _ = k.cache.Refresh(fctx, k.url)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}
