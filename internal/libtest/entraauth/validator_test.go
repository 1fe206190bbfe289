package entraauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// clock is an adjustable clock for the validator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func jwksFetches(srv *entra.Server) int64 { return srv.Stats().Requests[entra.EndpointJWKS] }

func mustValidate(t *testing.T, v *entraauth.Validator, tok string) *entraauth.Identity {
	t.Helper()
	id, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return id
}

func TestIdentityFromToken(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	id := mustValidate(t, f.v, f.alice)
	if id.ObjectID != entra.AliceOID || id.TenantID != entra.HomeTenantID || id.Name != "Alice Admin" ||
		id.PreferredUsername != "alice@home.handoff.test" || !id.HasScope(entra.ScopeAccessAsUser) ||
		!id.HasRole(entra.RoleAdmin) || id.CallerAppID != entra.DevClientID || id.AppOnly || id.Token != f.alice || id.Version != "2.0" {
		t.Errorf("identity = %+v", id)
	}
	app := mustValidate(t, f.v, f.appOnly)
	if !app.AppOnly || app.CallerAppID != entra.OperatorClientID || app.Name != "" {
		t.Errorf("app-only identity = %+v", app)
	}

	// The handler behind Protect sees the same identity.
	var seen *entraauth.Identity
	h := f.v.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = entraauth.FromContext(r.Context())
	}), entraauth.Scopes(entra.ScopeAccessAsUser), entraauth.UserRoles(entra.RoleAdmin, entra.RoleEditor))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, bearer(f.alice)())
	if rec.Code != 200 || seen == nil || seen.ObjectID != entra.AliceOID {
		t.Fatalf("Protect: %d, identity %+v", rec.Code, seen)
	}
	if s := seen.String(); len(s) > 200 || containsToken(s, f.alice) {
		t.Errorf("Identity.String leaks the token: %s", s)
	}
}

func containsToken(s, tok string) bool {
	return len(tok) > 20 && (len(s) >= 20 && (stringsContains(s, tok[:20]) || stringsContains(s, tok[len(tok)-20:])))
}

func TestNewFailsClosed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		authority string
		cfg       entraauth.Config
	}{
		{"no client id", entraauth.DefaultAuthority, entraauth.Config{TenantIDs: allowed}},
		{"no tenants", entraauth.DefaultAuthority, entraauth.Config{ClientID: entra.TaskAPIClientID}},
		{"tenant not a GUID", entraauth.DefaultAuthority, entraauth.Config{ClientID: entra.TaskAPIClientID, TenantIDs: []string{"common"}}},
		{"http authority", "http://login.microsoftonline.com", entraauth.Config{ClientID: entra.TaskAPIClientID, TenantIDs: allowed}},
		{"authority with a tenant path", entraauth.DefaultAuthority + "/common", entraauth.Config{ClientID: entra.TaskAPIClientID, TenantIDs: allowed}},
	} {
		if _, err := entraauth.New(ctx, tc.authority, tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

func TestTenantPolicy(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	if _, err := f.v.Validate(context.Background(), f.frank); err == nil {
		t.Fatal("frank's tenant accepted without being allowed")
	}
	anyTenant := newValidator(t, f.srv, entraauth.Config{AllowAnyTenant: true})
	if id := mustValidate(t, anyTenant, f.frank); id.TenantID != entra.ThirdTenantID {
		t.Errorf("AllowAnyTenant: tid %s", id.TenantID)
	}
	erin := passwordToken(t, f.srv, entra.SecondTenantID, "erin@fabrikam.handoff.test", taskAPIScope)
	mustValidate(t, f.v, erin)
}

func TestV1Tokens(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	v1 := f.with(t, map[string]any{"ver": "1.0", "iss": f.srv.IssuerV1(entra.HomeTenantID), "aud": "api://" + entra.TaskAPIClientID,
		"appid": entra.DevClientID, "azp": nil, "upn": "alice@home.handoff.test", "preferred_username": nil})
	if _, err := f.v.Validate(context.Background(), v1); err == nil {
		t.Fatal("v1 token accepted by a v2-only validator")
	}
	both := newValidator(t, f.srv, entraauth.Config{AcceptV1: true})
	id := mustValidate(t, both, v1)
	if id.Version != "1.0" || id.CallerAppID != entra.DevClientID || id.PreferredUsername != "alice@home.handoff.test" {
		t.Errorf("v1 identity = %+v", id)
	}
	// A v1 token bearing the v2 issuer (or the reverse) is refused.
	mixed := f.with(t, map[string]any{"ver": "1.0"})
	if _, err := both.Validate(context.Background(), mixed); err == nil {
		t.Error("v1 token with the v2 issuer accepted")
	}
	mustValidate(t, both, f.alice)
}

// TestTokensOfAnotherAuthority: tokens of one emulator are refused by a
// validator trusting another, as the emulator's must be by production.
func TestTokensOfAnotherAuthority(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	other := entratest.Start(t, entra.Config{})
	v := newValidator(t, other, entraauth.Config{})
	if _, err := v.Validate(context.Background(), f.alice); err == nil {
		t.Fatal("a token of another authority was accepted")
	}
}

// TestKeyRotation: a rotation at the authority is picked up on the first
// unknown kid, with no restart.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	mustValidate(t, f.v, f.alice)
	if err := f.srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.RetireOldSigningKeys(); err != nil {
		t.Fatal(err)
	}
	before := jwksFetches(f.srv)
	fresh := passwordToken(t, f.srv, entra.HomeTenantID, "bob@home.handoff.test", taskAPIScope)
	if id := mustValidate(t, f.v, fresh); id.ObjectID != entra.BobOID {
		t.Errorf("identity after rotation = %+v", id)
	}
	if got := jwksFetches(f.srv) - before; got != 1 {
		t.Errorf("JWKS fetches for the new kid = %d, want 1", got)
	}
	// The retired key's token no longer verifies once the keys were refreshed.
	if _, err := f.v.Validate(context.Background(), f.alice); err == nil {
		t.Error("a token of a retired key still verifies")
	}
}

// TestRefreshRateLimit: kid misses within the minimum interval share the
// last refresh; after it, a new rotation is picked up.
func TestRefreshRateLimit(t *testing.T) {
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now})
	mustValidate(t, f.v, f.alice)

	rotate := func() string {
		t.Helper()
		if err := f.srv.RotateSigningKeys(); err != nil {
			t.Fatal(err)
		}
		return passwordToken(t, f.srv, entra.HomeTenantID, "bob@home.handoff.test", taskAPIScope)
	}
	first := rotate()
	mustValidate(t, f.v, first) // refresh #1
	start := jwksFetches(f.srv)

	clk.Advance(entraauth.DefaultMinRefreshInterval / 2)
	second := rotate()
	if _, err := f.v.Validate(context.Background(), second); err == nil {
		t.Fatal("a kid rotated in within the minimum interval was fetched")
	}
	if got := jwksFetches(f.srv) - start; got != 0 {
		t.Errorf("JWKS fetches within the interval = %d, want 0", got)
	}

	clk.Advance(entraauth.DefaultMinRefreshInterval)
	mustValidate(t, f.v, second)
	if got := jwksFetches(f.srv) - start; got != 1 {
		t.Errorf("JWKS fetches after the interval = %d, want 1", got)
	}
}

// TestJWKSOutage: after warm-up, a JWKS outage does not reject valid tokens.
func TestJWKSOutage(t *testing.T) {
	clk := newClock()
	f := newFixture(t, entraauth.Config{Now: clk.Now})
	mustValidate(t, f.v, f.alice)
	f.srv.FailJWKSRequests(1 << 20)
	defer f.srv.FailJWKSRequests(0)

	// An unknown kid makes the validator try a refresh, which fails...
	clk.Advance(time.Minute)
	if err := f.srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	fresh := passwordToken(t, f.srv, entra.HomeTenantID, "bob@home.handoff.test", taskAPIScope)
	if _, err := f.v.Validate(context.Background(), fresh); err == nil {
		t.Fatal("a token of a key that could not be fetched was accepted")
	}
	// ...and the keys already cached keep working.
	for range 3 {
		mustValidate(t, f.v, f.alice)
	}
}

// TestUnknownKidBurst: 1000 concurrent tokens with unknown kids cause at most
// one JWKS fetch.
func TestUnknownKidBurst(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	mustValidate(t, f.v, f.alice)
	before := jwksFetches(f.srv)
	tokens := make([]string, 1000)
	for i := range tokens {
		h := headerOf(t, f.alice)
		h["kid"] = "unknown-" + itoa(i)
		parts := splitToken(f.alice)
		tokens[i] = seg(t, h) + "." + parts[1] + "." + parts[2]
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.v.Validate(context.Background(), tok); err == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if accepted != 0 {
		t.Errorf("%d tokens with unknown kids accepted", accepted)
	}
	if got := jwksFetches(f.srv) - before; got > 1 {
		t.Errorf("JWKS fetches for 1000 unknown kids = %d, want at most 1", got)
	}
}

// TestAuthorityUnavailable: with no metadata, requests fail closed with 503,
// and the validator recovers once the authority answers.
func TestAuthorityUnavailable(t *testing.T) {
	srv := entratest.Start(t, entra.Config{})
	tok := passwordToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	clk := newClock()
	srv.FailJWKSRequests(1)
	v := newValidator(t, srv, entraauth.Config{Now: clk.Now})
	_, err := v.Validate(context.Background(), tok)
	if !errors.Is(err, entraauth.ErrUnavailable) {
		t.Fatalf("Validate while keys fail: %v, want ErrUnavailable", err)
	}
	rec := httptest.NewRecorder()
	v.Protect(okHandler()).ServeHTTP(rec, bearer(tok)())
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("Protect while unavailable: %d %v", rec.Code, rec.Header())
	}
	clk.Advance(10 * time.Second)
	mustValidate(t, v, tok)
}
