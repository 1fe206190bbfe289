package entraauth

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// resnapInterval is how often the key snapshot is taken again from the
// cache (which refreshes itself in the background), so keys the authority
// retires stop verifying within a minute of the cache seeing it.
const resnapInterval = time.Minute

// keySource serves Entra's signing keys from a jwk.Cache registered on one
// fixed JWKS URL. Requests read an immutable snapshot of the keys and never
// wait on a fetch unless their kid is unknown. An unknown kid triggers at
// most one refresh per minInterval, shared by every request that missed
// meanwhile; when a refresh fails the keys already cached keep working.
type keySource struct {
	cache       *jwk.Cache
	url         string
	minInterval time.Duration
	now         func() time.Time

	snap     atomic.Pointer[keySnapshot]
	resnapOn atomic.Bool // a background re-snapshot is running

	mu          sync.Mutex
	lastRefresh time.Time     // of a kid-miss refresh, by now()
	inflight    chan struct{} // closed when the running refresh ends
}

type keySnapshot struct {
	keys  map[string]*rsa.PublicKey
	taken time.Time
}

// newKeySource registers the JWKS URL and loads the keys once, with ctx
// bounding that first fetch; bg bounds the cache's background refreshes.
func newKeySource(ctx, bg context.Context, jwksURL string, hc *http.Client, minInterval time.Duration, now func() time.Time) (*keySource, error) {
	c := jwk.NewCache(bg)
	// The cache's own periodic refresh runs no more often than minInterval
	// either, and at least daily, as Entra advises.
	if err := c.Register(jwksURL, jwk.WithHTTPClient(hc), jwk.WithMinRefreshInterval(max(minInterval, time.Minute)), jwk.WithRefreshInterval(24*time.Hour)); err != nil {
		return nil, err
	}
	k := &keySource{cache: c, url: jwksURL, minInterval: minInterval, now: now}
	set, err := c.Get(ctx, jwksURL)
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
		if k.now().Sub(s.taken) >= resnapInterval {
			k.resnapAsync()
		}
		return pub, nil
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if pub := k.snap.Load().keys[kid]; pub != nil {
		return pub, nil
	}
	return nil, invalid("the token's signing key (kid) is not one of the authority's keys")
}

// store takes a snapshot of set's RSA signature keys.
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
	k.snap.Store(&keySnapshot{keys: keys, taken: k.now()})
}

// resnapAsync takes the snapshot again from the cache, off the request path
// (the cache may be busy fetching).
func (k *keySource) resnapAsync() {
	if !k.resnapOn.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer k.resnapOn.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if set, err := k.cache.Get(ctx, k.url); err == nil {
			k.store(set)
		}
	}()
}

// refresh fetches the JWKS again unless one was fetched within minInterval;
// concurrent callers wait for the same fetch. A caller's ctx bounds only its
// own wait; the fetch runs to completion (bounded by refreshTimeout).
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
		fctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		// A failed refresh keeps the snapshot; the miss is reported as an
		// unknown key, and the next miss after minInterval tries again.
		if set, err := k.cache.Refresh(fctx, k.url); err == nil {
			k.store(set)
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}
