package downstream_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

var (
	taskAPIScope      = "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	notificationScope = entra.NotificationClientID + "/.default"
	auditScope        = entra.AuditClientID + "/.default"
)

type env struct {
	srv *entra.Server
	v   *entraauth.Validator
}

func newEnv(t testing.TB, cfg entra.Config) *env {
	t.Helper()
	srv := entratest.Start(t, cfg)
	v, err := entraauth.New(context.Background(), srv.BaseURL(), entraauth.Config{
		ClientID: entra.TaskAPIClientID, AllowAnyTenant: true, HTTPClient: srv.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, v: v}
}

func (e *env) client(t testing.TB, cred downstream.Credential, mod func(*downstream.Config)) *downstream.Client {
	t.Helper()
	if cred == nil {
		var err error
		if cred, err = downstream.ClientSecret(entra.TaskAPISecret); err != nil {
			t.Fatal(err)
		}
	}
	cfg := downstream.Config{Authority: e.srv.BaseURL(), HomeTenantID: entra.HomeTenantID, ClientID: entra.TaskAPIClientID,
		Credential: cred, HTTPClient: e.srv.HTTPClient()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := downstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// user signs a user in (password grant, dev client) and validates the token
// as the Task API would, giving the Identity OBO starts from.
func (e *env) user(t testing.TB, tenant, username string) *entraauth.Identity {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(e.srv.Authority(tenant)),
		public.WithHTTPClient(e.srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), []string{taskAPIScope}, username, entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.v.Validate(context.Background(), res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// signed makes a distinct, validly signed token A for alice (a new uti), far
// cheaper than a sign-in when thousands are needed.
func (e *env) signed(t testing.TB, tmpl *entraauth.Identity, i int) *entraauth.Identity {
	t.Helper()
	c := claimsOf(t, tmpl.Token)
	c["uti"] = "u" + strconv.Itoa(i)
	tok, err := e.srv.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	id := *tmpl
	id.Token = tok
	return &id
}

func (e *env) grants(grant string) int64 { return e.srv.Stats().Grants[grant] }

func TestClientCredentialsCached(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				tok, err := c.AppToken(context.Background(), auditScope)
				if err != nil {
					t.Error(err)
					return
				}
				if tok.AccessToken == "" || strings.Contains(tok.String(), tok.AccessToken) {
					t.Error("token empty, or its String shows it")
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := e.grants(entra.GrantClientCredentials); got != 1 {
		t.Errorf("1000 acquisitions made %d token requests, want 1", got)
	}
	tok, _ := c.AppToken(context.Background(), auditScope)
	if c := claimsOf(t, tok.AccessToken); c["aud"] != entra.AuditClientID || c["idtyp"] != "app" {
		t.Errorf("app token claims = %v", c)
	}
}

func TestOBOCached(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")

	// 1000 calls with one user token, 100 of them at once: one request.
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := c.OnBehalfOfUser(context.Background(), alice, notificationScope); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := e.grants(entra.GrantOnBehalfOf); got != 1 {
		t.Fatalf("1000 OBO calls with one token made %d requests, want 1", got)
	}

	// 10 users × 100 calls: 10 requests.
	var users []*entraauth.Identity
	for _, name := range []string{"alice", "bob", "carol", "dave", "alice", "bob", "carol", "dave", "alice", "bob"} {
		users = append(users, e.user(t, entra.HomeTenantID, name+"@home.handoff.test"))
	}
	e.srv.ResetStats()
	for _, u := range users {
		for range 100 {
			tok, err := c.OnBehalfOfUser(context.Background(), u, notificationScope)
			if err != nil {
				t.Fatal(err)
			}
			if got := claimsOf(t, tok.AccessToken)["oid"]; got != u.ObjectID {
				t.Fatalf("OBO token oid %v for user %s: a cache mixed users up", got, u.ObjectID)
			}
		}
	}
	if got := e.grants(entra.GrantOnBehalfOf); got != 10 {
		t.Errorf("10 user tokens × 100 calls made %d requests, want 10", got)
	}
	if s := c.Stats(); s.OBOHits < 990 {
		t.Errorf("stats %+v, want ≥ 990 cache hits", s)
	}
}

// TestOBOAtUsersTenant: erin's token is exchanged at her own tenant, never at
// the home tenant or organizations.
func TestOBOAtUsersTenant(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	erin := e.user(t, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	for _, u := range []*entraauth.Identity{erin, alice} {
		// The raw form: the bearer token and the user's tenant, however validated.
		tok, err := c.OnBehalfOf(context.Background(), u.Token, u.TenantID, notificationScope)
		if err != nil {
			t.Fatal(err)
		}
		if got := claimsOf(t, tok.AccessToken)["tid"]; got != u.TenantID {
			t.Errorf("token tid %v, want %s", got, u.TenantID)
		}
	}
	byTenant := e.srv.Stats().GrantsByTenant[entra.GrantOnBehalfOf]
	if byTenant[entra.SecondTenantID] != 1 || byTenant[entra.HomeTenantID] != 1 || len(byTenant) != 2 {
		t.Errorf("OBO requests by authority tenant = %v", byTenant)
	}
	if _, err := c.OnBehalfOfUser(context.Background(), &entraauth.Identity{AppOnly: true, Token: "x", TenantID: entra.HomeTenantID}, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
		t.Errorf("OBO with an app-only identity: %v", err)
	}
	if _, err := c.OnBehalfOfUser(context.Background(), nil, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
		t.Errorf("OBO with no identity: %v", err)
	}
	// The raw form refuses what it cannot exchange before any request: no
	// token, or a tenant that is not one (common, organizations, a name).
	before := e.grants(entra.GrantOnBehalfOf)
	for _, tenant := range []string{"", "common", "organizations", "contoso.onmicrosoft.com"} {
		if _, err := c.OnBehalfOf(context.Background(), alice.Token, tenant, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
			t.Errorf("OBO at tenant %q: %v", tenant, err)
		}
	}
	if _, err := c.OnBehalfOf(context.Background(), "", alice.TenantID, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
		t.Errorf("OBO with no token: %v", err)
	}
	if got := e.grants(entra.GrantOnBehalfOf); got != before {
		t.Errorf("refused calls made %d OBO requests", got-before)
	}
}

// TestOBOBounded: with the bound at 100, 2000 distinct user tokens leave at
// most 100 cached results and 100 MSAL entries, and a flat heap.
func TestOBOBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("2000 token exchanges; run without -short")
	}
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.OBOCacheSize = 100 })
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var afterWarmup uint64
	for i := range 2000 {
		if _, err := c.OnBehalfOfUser(context.Background(), e.signed(t, alice, i), notificationScope); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.OBOCached > 100 || s.MSALEntries > 100 {
			t.Fatalf("after %d tokens: %+v exceeds the bound 100", i+1, s)
		}
		if i == 499 {
			afterWarmup = heap()
		}
	}
	end := heap()
	runtime.KeepAlive(c) // the client's caches are what is measured
	growth := int64(end) - int64(afterWarmup)
	t.Logf("heap after 500 tokens %d KiB, after 2000 %d KiB, stats %+v", afterWarmup>>10, end>>10, c.Stats())
	// A bare MSAL client, measured the same way, grew 5.3 MiB over these
	// 1500 tokens (about 3.6 KiB each, never evicted); bounded, the heap must
	// not grow by even 2 MiB.
	if growth > 2<<20 {
		t.Errorf("heap grew %d KiB over 1500 more distinct tokens; the caches are not bounded", growth>>10)
	}
}

// TestTenantClientCreatedOnce: concurrent first use of a tenant builds one
// MSAL client, so the tenant's metadata is discovered once.
func TestTenantClientCreatedOnce(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	erin := e.user(t, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	e.srv.ResetStats()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.OnBehalfOfUser(context.Background(), e.signed(t, erin, i), notificationScope); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := e.srv.Stats()
	if st.Requests[entra.EndpointDiscovery] != 1 || c.Stats().Tenants != 1 || st.Grants[entra.GrantOnBehalfOf] != 50 {
		t.Errorf("discovery requests %d, tenant clients %d, OBO requests %d; want 1, 1, 50",
			st.Requests[entra.EndpointDiscovery], c.Stats().Tenants, st.Grants[entra.GrantOnBehalfOf])
	}
}

func TestTenantClientsBounded(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.MaxTenants = 1 })
	erin := e.user(t, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	for _, u := range []*entraauth.Identity{erin, alice, erin} {
		if _, err := c.OnBehalfOfUser(context.Background(), e.signed(t, u, int(time.Now().UnixNano())), notificationScope); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Tenants > 1 {
			t.Fatalf("tenant clients %d, bound 1", s.Tenants)
		}
	}
}

func TestTransientFailuresRetried(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	e.srv.FailTokenRequests(2, entra.GrantClientCredentials)
	if _, err := c.AppToken(context.Background(), auditScope); err != nil {
		t.Fatalf("two transient failures, three attempts: %v", err)
	}
	if got := e.grants(entra.GrantClientCredentials); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}

	other := e.client(t, nil, nil)
	e.srv.FailTokenRequests(10, entra.GrantClientCredentials)
	_, err := other.AppToken(context.Background(), auditScope)
	if !errors.Is(err, downstream.ErrTransient) {
		t.Fatalf("persistent 503s: %v, want ErrTransient", err)
	}
	e.srv.FailTokenRequests(0, "")

	// Latency beyond the caller's deadline fails by the deadline, without retries past it.
	e.srv.SetTokenLatency(3 * time.Second)
	defer e.srv.SetTokenLatency(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	third := e.client(t, nil, nil)
	if _, err := third.AppToken(ctx, auditScope); err == nil {
		t.Fatal("token request slower than the deadline succeeded")
	}
}

// TestPitfalls: each mistake of the original yields an error that names the fix.
func TestPitfalls(t *testing.T) {
	clk := &clock{}
	e := newEnv(t, entra.Config{Now: clk.Now})
	ctx := context.Background()
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")

	t.Run("wrong secret", func(t *testing.T) {
		wrong, _ := downstream.ClientSecret("the-secret-id-not-its-value")
		_, err := e.client(t, wrong, nil).AppToken(ctx, auditScope)
		var ce *downstream.CredentialError
		if !errors.As(err, &ce) || ce.Code != 7000215 || !strings.Contains(ce.Error(), "Value (not its Secret ID)") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("OBO assertion for another audience", func(t *testing.T) {
		c := e.client(t, nil, nil)
		other := e.signed(t, alice, 1)
		cl := claimsOf(t, other.Token)
		cl["aud"] = entra.NotificationClientID
		other.Token, _ = e.srv.SignToken(cl)
		_, err := c.OnBehalfOfUser(ctx, other, notificationScope)
		var ie *downstream.InvalidAssertionError
		if !errors.As(err, &ie) || ie.Code != 500131 || !strings.Contains(err.Error(), "issued for another API") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expired assertion", func(t *testing.T) {
		c := e.client(t, nil, nil)
		clk.Advance(2 * time.Hour)
		defer clk.Advance(-2 * time.Hour)
		_, err := c.OnBehalfOfUser(ctx, e.signed(t, alice, 2), notificationScope)
		var ie *downstream.InvalidAssertionError
		if !errors.As(err, &ie) || ie.Code != 500133 || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing consent", func(t *testing.T) {
		dir := entra.DefaultDirectory()
		second := dir.Tenant(entra.SecondTenantID)
		var kept []*entra.ConsentGrant
		for _, g := range second.ConsentGrants {
			if g.ClientAppID != entra.TaskAPIClientID {
				kept = append(kept, g)
			}
		}
		second.ConsentGrants = kept
		e2 := newEnv(t, entra.Config{Directory: dir})
		erin := e2.user(t, entra.SecondTenantID, "erin@fabrikam.handoff.test")
		_, err := e2.client(t, nil, nil).OnBehalfOfUser(ctx, erin, notificationScope)
		var cr *downstream.ConsentRequiredError
		if !errors.As(err, &cr) || cr.Code != 65001 || cr.Scopes[0] != notificationScope || !strings.Contains(err.Error(), "an admin of the user's tenant must grant it") {
			t.Fatalf("got %v", err)
		}
	})
}

// clock is an adjustable clock for the emulator (entratest.Clock).
type clock = entratest.Clock
