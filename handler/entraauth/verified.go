package entraauth

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
)

// DefaultTokenCacheSize is how many validated tokens a Validator remembers
// unless [Config.TokenCacheSize] says otherwise.
const DefaultTokenCacheSize = 4096

// verifiedTokens remembers tokens that passed every check, by the SHA-256
// of the whole token (header, claims and signature as received), with the
// key that verified them and their decoded claims. A token presented again
// is then neither decoded nor verified again, as long as the key that
// verified it is still the one the key set holds for its kid: every other
// check (issuer, tenant, audience, exp and nbf against the clock) runs on
// every call. The same bytes verified with the same key give the same
// answer, so the result is the one a full validation gives; what it saves
// is the RSA verification and the decoding, most of a validation's cost
// (docs/performance.md, "CPU per create").
//
// Only tokens that were accepted are remembered, so tokens for other APIs
// or tenants cannot fill it. It holds at most max entries and is emptied
// when full (a burst of new tokens then costs full validations, nothing
// else); a periodic key refresh replaces the key objects, so every token is
// verified again once per key refresh interval.
type verifiedTokens struct {
	max int // 0: off

	mu sync.RWMutex
	m  map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	kid    string
	pub    *rsa.PublicKey // the snapshot's key object that verified it
	claims *claims        // read only: shared by every hit
}

func newVerifiedTokens(size int) *verifiedTokens {
	switch {
	case size == 0:
		size = DefaultTokenCacheSize
	case size < 0:
		size = 0
	}
	return &verifiedTokens{max: size, m: map[[sha256.Size]byte]verifiedToken{}}
}

// digest is the cache key of raw.
func digest(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }

func (c *verifiedTokens) get(d [sha256.Size]byte) (verifiedToken, bool) {
	if c.max == 0 {
		return verifiedToken{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[d]
	return e, ok
}

func (c *verifiedTokens) put(d [sha256.Size]byte, e verifiedToken) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[d] = e
}

func (c *verifiedTokens) remove(d [sha256.Size]byte) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, d)
}

func (c *verifiedTokens) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
