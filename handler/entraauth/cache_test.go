package entraauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// The token cache must never accept what a full validation refuses: each
// test below presents a token the cache has seen, then what an attacker
// (or time) would change.

// TestCachedTokenExpires: a remembered token is refused once it expires,
// and forgotten.
func TestCachedTokenExpires(t *testing.T) {
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now})
	tok := a.token(t, nil, nil) // exp in an hour
	mustAccept(t, v, tok)
	mustAccept(t, v, tok)
	if n := entraauth.TokenCacheLen(v); n != 1 {
		t.Fatalf("tokens remembered = %d, want 1", n)
	}
	clk.advance(time.Hour + entraauth.DefaultClockSkew)
	_, err := v.Validate(context.Background(), tok)
	wantReason(t, err, reasonExpired)
	if n := entraauth.TokenCacheLen(v); n != 0 {
		t.Errorf("tokens remembered after the expiry = %d, want 0", n)
	}
}

// TestCachedTokenNeedsItsKey: a remembered token stops validating when
// the authority publishes another key under its kid: the periodic refresh
// brings the new key, and the token is verified again, and fails. (A kid
// that leaves the set: TestRotatedKeyValidates, whose old token is
// remembered when its key is retired.)
func TestCachedTokenNeedsItsKey(t *testing.T) {
	const every = 10 * time.Minute
	a := newTestAuthority(t)
	clk := newTestClock()
	v := a.validator(t, entraauth.Config{Now: clk.Now, KeyRefreshInterval: every})
	old := a.token(t, nil, nil)
	mustAccept(t, v, old)
	a.rotate(t, authKid)
	clk.advance(every) // the periodic refresh is due
	_, err := v.Validate(context.Background(), old)
	wantReason(t, err, reasonSignature)
}

// TestCacheKeyIsTheWholeToken: the claims and header of a remembered
// token under another signature (forged, truncated, or a valid one's bits
// flipped) are verified, and refused.
func TestCacheKeyIsTheWholeToken(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	tok := a.token(t, nil, nil)
	mustAccept(t, v, tok)
	i := strings.LastIndexByte(tok, '.')
	signed, sig := tok[:i], tok[i+1:]
	flip := []byte(sig)
	flip[10] ^= 'A' ^ 'B'
	if flip[10] == sig[10] {
		flip[10] = 'C'
	}
	for name, forged := range map[string]string{
		"another token's signature": signed + "." + a.token(t, nil, map[string]any{"name": "Other"})[i+1:],
		"a character changed":       signed + "." + string(flip),
		"signature truncated":       signed + "." + sig[:len(sig)-4],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), forged)
			if err == nil {
				t.Fatal("a forged signature on a remembered token was accepted")
			}
		})
	}
	mustAccept(t, v, tok)
}

// TestCacheIsPerValidator: a token another API accepted (and remembers)
// is still not for this one.
func TestCacheIsPerValidator(t *testing.T) {
	a := newTestAuthority(t)
	other := a.validator(t, entraauth.Config{ClientID: "50000000-0000-4000-8000-000000000001"})
	v := a.validator(t, entraauth.Config{})
	tok := a.token(t, nil, map[string]any{"aud": "50000000-0000-4000-8000-000000000001"})
	mustAccept(t, other, tok)
	_, err := v.Validate(context.Background(), tok)
	wantReason(t, err, reasonAud)
	if n := entraauth.TokenCacheLen(v); n != 0 {
		t.Errorf("a refused token is remembered: %d entries", n)
	}
}

// TestCachedIdentityIsACopy: a caller changing the identity it got does
// not change what the next request with the same token gets.
func TestCachedIdentityIsACopy(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	tok := a.token(t, nil, nil)
	id, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	id.Roles[0] = "Owner"
	id.Scopes[0] = "everything"
	again, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !again.HasRole("Admin") || again.HasRole("Owner") || !again.HasScope("access_as_user") {
		t.Errorf("the second validation saw the first caller's edits: roles %v, scopes %v", again.Roles, again.Scopes)
	}
}

// TestTokenCacheBound: at most TokenCacheSize tokens are remembered; a
// negative size remembers none, and every token still validates.
func TestTokenCacheBound(t *testing.T) {
	a := newTestAuthority(t)
	for _, tc := range []struct{ size, want int }{{2, 2}, {-1, 0}} {
		v := a.validator(t, entraauth.Config{TokenCacheSize: tc.size})
		for i := range 5 {
			tok := a.token(t, nil, map[string]any{"name": strings.Repeat("x", i)})
			mustAccept(t, v, tok)
			mustAccept(t, v, tok)
			if n := entraauth.TokenCacheLen(v); n > tc.want {
				t.Fatalf("size %d: %d tokens remembered", tc.size, n)
			}
		}
		if n := entraauth.TokenCacheLen(v); tc.want > 0 && n == 0 {
			t.Errorf("size %d: nothing remembered", tc.size)
		}
	}
	if entraauth.DefaultTokenCacheSize != 4096 {
		t.Errorf("DefaultTokenCacheSize = %d; the docs say 4096", entraauth.DefaultTokenCacheSize)
	}
}

// TestCacheHitSkipsVerification: a remembered token costs a fraction of
// the allocations of a full validation (no decoding, no RSA arithmetic).
func TestCacheHitSkipsVerification(t *testing.T) {
	a := newTestAuthority(t)
	tok := a.token(t, nil, nil)
	allocs := func(size int) float64 {
		v := a.validator(t, entraauth.Config{TokenCacheSize: size})
		mustAccept(t, v, tok)
		return testing.AllocsPerRun(50, func() { _, _ = v.Validate(context.Background(), tok) })
	}
	full, hit := allocs(-1), allocs(0)
	if hit*3 > full {
		t.Errorf("allocations per validation: %v with the cache, %v without; want a third or less", hit, full)
	}
}
