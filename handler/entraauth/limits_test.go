package entraauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// retryInterval mirrors the validator's spacing of discovery attempts (5 s).
const retryInterval = 5 * time.Second

// TestTokenSizeBound: a token of exactly MaxTokenSize bytes is read (and
// refused for what it is); one byte more is refused for its size, by
// Validate and by Protect alike.
func TestTokenSizeBound(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	atBound := strings.Repeat("A", entraauth.MaxTokenSize)
	const tooLarge = "larger than 16384 bytes"
	_, err := v.Validate(context.Background(), atBound)
	wantReason(t, err, "not a signed JWT")
	_, err = v.Validate(context.Background(), atBound+"A")
	wantReason(t, err, tooLarge)
	for tok, want := range map[string]string{atBound: "not a signed JWT", atBound + "A": tooLarge} {
		rec := httptest.NewRecorder()
		v.Protect(okHandler()).ServeHTTP(rec, bearer(tok)())
		if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), want) {
			t.Errorf("a %d-byte token: %d %q, want 401 saying %q", len(tok), rec.Code, rec.Header().Get("WWW-Authenticate"), want)
		}
	}
}

// TestChallengeWithoutToken: a request with no token gets a bare Bearer
// challenge (RFC 6750 3.1: no error code when no credentials were sent).
func TestChallengeWithoutToken(t *testing.T) {
	a := newTestAuthority(t)
	rec := httptest.NewRecorder()
	a.validator(t, entraauth.Config{}).Protect(okHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("WWW-Authenticate"); rec.Code != 401 || got != "Bearer" {
		t.Errorf("no token: %d %q, want 401 \"Bearer\"", rec.Code, got)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if _, has := p["error"]; has || p["detail"] != "no bearer token" {
		t.Errorf("no token: problem %v, want no error code", p)
	}
	// With a token, the problem carries the RFC 6750 code.
	rec = httptest.NewRecorder()
	a.validator(t, entraauth.Config{}).Protect(okHandler()).ServeHTTP(rec, bearer("x.y.z")())
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["error"] != "invalid_token" {
		t.Errorf("a bad token: problem %s, want error invalid_token", rec.Body)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRejectionsLogged: a refused token is logged once with its reason, a
// forbidden request once as forbidden; never the token.
func TestRejectionsLogged(t *testing.T) {
	a := newTestAuthority(t)
	var logs syncBuffer
	v := a.validator(t, entraauth.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h := v.Protect(okHandler(), entraauth.AppPermissions("AuditLog.Write"))

	expired := a.token(t, nil, map[string]any{"exp": testNow.Add(-time.Hour).Unix()})
	h.ServeHTTP(httptest.NewRecorder(), bearer(expired)())
	if got := logs.String(); strings.Count(got, "token rejected") != 1 || !strings.Contains(got, reasonExpired) || strings.Contains(got, "forbidden") {
		t.Errorf("log of a refused token:\n%s", got)
	}
	before := len(logs.String())
	delegated := a.token(t, nil, nil)
	h.ServeHTTP(httptest.NewRecorder(), bearer(delegated)())
	got := logs.String()[before:]
	if strings.Count(got, "request forbidden") != 1 || strings.Contains(got, "token rejected") {
		t.Errorf("log of a forbidden request:\n%s", got)
	}
	if strings.Contains(logs.String(), strings.Split(delegated, ".")[2][:20]) {
		t.Error("a token was logged")
	}
}

// TestAppOnlyWithoutIdtyp: without idtyp, a token is app-only when it has
// no scp and its subject is its oid (the caller itself).
func TestAppOnlyWithoutIdtyp(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	tests := []struct {
		name    string
		claims  map[string]any
		appOnly bool
	}{
		{"no scp, oid == sub", map[string]any{"scp": nil, "sub": authUserOID}, true},
		{"no scp, oid != sub", map[string]any{"scp": nil}, false},
		{"no scp, no oid, no sub", map[string]any{"scp": nil, "oid": nil, "sub": nil}, false},
		{"scp, oid == sub", map[string]any{"sub": authUserOID}, false},
		{"idtyp app, no scp, oid != sub", map[string]any{"scp": nil, "idtyp": "app"}, true},
		{"idtyp user, no scp, oid == sub", map[string]any{"scp": nil, "sub": authUserOID, "idtyp": "user"}, false},
	}
	for _, tt := range tests {
		id, err := v.Validate(context.Background(), a.token(t, nil, tt.claims))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if id.AppOnly != tt.appOnly {
			t.Errorf("%s: AppOnly = %v, want %v", tt.name, id.AppOnly, tt.appOnly)
		}
	}
}

// TestDiscoveryRetrySpacing: after a failed discovery the validator
// answers from the failure until retryInterval has passed, then asks again.
func TestDiscoveryRetrySpacing(t *testing.T) {
	a := newTestAuthority(t)
	good := mustJSON(t, map[string]any{"issuer": a.base() + "/{tenantid}/v2.0", "jwks_uri": a.base() + jwksPath})
	a.setMetadata(false, []byte(`{`))
	clk := testNow
	var mu sync.Mutex
	v := a.validator(t, entraauth.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }})
	advance := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	tok := a.token(t, nil, nil)
	_, err := v.Validate(context.Background(), tok)
	wantUnavailable(t, err, "unexpected EOF")
	a.setMetadata(false, good)
	asked := a.requests.Load()
	advance(retryInterval - time.Second)
	_, err = v.Validate(context.Background(), tok)
	wantUnavailable(t, err, "unexpected EOF")
	if a.requests.Load() != asked {
		t.Error("the authority was asked again within retryInterval")
	}
	advance(time.Second) // exactly retryInterval after the failure
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("after retryInterval: %v", err)
	}
}

// TestKeyUse: a key the JWKS marks for encryption never verifies a token;
// one with no use does.
func TestKeyUse(t *testing.T) {
	for use, ok := range map[string]bool{"enc": false, "sig": true, "": true} {
		a := newTestAuthority(t)
		a.keyUse = use
		if use == "" {
			a.keyUse = "omitted"
		}
		_, err := a.validator(t, entraauth.Config{}).Validate(context.Background(), a.token(t, nil, nil))
		if ok && err != nil {
			t.Errorf("use %q: %v", use, err)
		}
		if !ok {
			wantReason(t, err, reasonKid)
		}
	}
}

// TestUnknownKidRefreshSpacing: an unknown kid refreshes the keys at most
// once per MinRefreshInterval, and again once it has passed.
func TestUnknownKidRefreshSpacing(t *testing.T) {
	a := newTestAuthority(t)
	clk := testNow
	var mu sync.Mutex
	v := a.validator(t, entraauth.Config{MinRefreshInterval: time.Minute, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }})
	advance := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	unknown := a.token(t, map[string]any{"kid": "rotated-in"}, nil)
	validate := func() {
		t.Helper()
		_, err := v.Validate(context.Background(), unknown)
		wantReason(t, err, reasonKid)
	}
	validate() // discovery fetches the keys, the miss refreshes them
	after := a.jwksGets.Load()
	validate()
	advance(time.Minute - time.Second)
	validate()
	if got := a.jwksGets.Load(); got != after {
		t.Errorf("JWKS fetched %d more times within MinRefreshInterval", got-after)
	}
	advance(time.Second) // exactly MinRefreshInterval after the refresh
	validate()
	if got := a.jwksGets.Load(); got != after+1 {
		t.Errorf("JWKS fetched %d more times at MinRefreshInterval, want 1", got-after)
	}
}
