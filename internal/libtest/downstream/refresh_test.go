package downstream_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/downstream"
)

// frozenClock moves only when told, for the forced-refresh bucket.
type frozenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *frozenClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("decode header: %v", err)
	}
	return h.Kid
}

func rotateAndRetire(t *testing.T, srv *entra.Server) {
	t.Helper()
	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	if err := srv.RetireOldSigningKeys(); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidTokenChallenge(t *testing.T) {
	for _, tc := range []struct {
		status int
		header []string
		want   bool
	}{
		{401, []string{`Bearer error="invalid_token", error_description="the token signature does not verify"`}, true},
		{401, []string{`bearer realm="api", error=invalid_token`}, true},
		{401, []string{`Basic realm="x"`, `Bearer error="invalid_token"`}, true},
		{401, []string{`Bearer error="insufficient_scope", scope="x"`}, false},
		{401, []string{`Bearer`}, false},
		{401, []string{`Bearer error_description="error=invalid_token"`}, false},
		{401, []string{`Bearer error="invalid_token_x"`}, false},
		{401, []string{`Basic error="invalid_token"`}, false},
		{401, nil, false},
		{403, []string{`Bearer error="invalid_token"`}, false},
		{500, []string{`Bearer error="invalid_token"`}, false},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		for _, h := range tc.header {
			resp.Header.Add("WWW-Authenticate", h)
		}
		if got := downstream.InvalidTokenChallenge(resp); got != tc.want {
			t.Errorf("%d %q: %v, want %v", tc.status, tc.header, got, tc.want)
		}
	}
	if downstream.InvalidTokenChallenge(nil) {
		t.Error("nil response")
	}
}

// TestRefreshAppToken: after a key rotation the cached app token is signed
// by a retired key; a refusal drops it and one new token is requested,
// shared by every caller that held the old one. A second refusal within
// ForcedRefreshInterval requests nothing.
func TestRefreshAppToken(t *testing.T) {
	const interval = 7 * time.Second
	e := newEnv(t, entra.Config{})
	clk := &frozenClock{now: time.Now()}
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.ForcedRefreshInterval, cfg.Now = interval, clk.Now })
	ctx := context.Background()
	old, err := c.AppToken(ctx, auditScope)
	if err != nil {
		t.Fatal(err)
	}
	rotateAndRetire(t, e.srv)
	if tok, _ := c.AppToken(ctx, auditScope); tok.AccessToken != old.AccessToken {
		t.Fatal("the rotation alone replaced the cached token; the test proves nothing")
	}
	before := e.grants(entra.GrantClientCredentials)

	// 50 callers were refused with the old token at once.
	var wg sync.WaitGroup
	fresh := make([]downstream.Token, 50)
	for i := range fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.RefreshAppToken(ctx, old, auditScope)
			if err != nil {
				t.Error(err)
			}
			fresh[i] = tok
		}()
	}
	wg.Wait()
	if got := e.grants(entra.GrantClientCredentials) - before; got != 1 {
		t.Fatalf("50 refusals of one token made %d token requests, want 1", got)
	}
	for _, tok := range fresh {
		if tok.AccessToken != fresh[0].AccessToken || tok.AccessToken == old.AccessToken || kidOf(t, tok.AccessToken) != e.srv.SigningKeyID() {
			t.Fatalf("refreshed token: kid %s, want one token of the new key %s", kidOf(t, tok.AccessToken), e.srv.SigningKeyID())
		}
	}
	if tok, _ := c.AppToken(ctx, auditScope); tok.AccessToken != fresh[0].AccessToken {
		t.Error("AppToken does not serve the refreshed token")
	}

	// A downstream that refuses every token: no storm.
	for range 20 {
		if _, err := c.RefreshAppToken(ctx, fresh[0], auditScope); !errors.Is(err, downstream.ErrRefreshLimited) {
			t.Fatalf("refusal within the interval: %v, want ErrRefreshLimited", err)
		}
	}
	clk.Advance(interval - time.Second)
	if _, err := c.RefreshAppToken(ctx, fresh[0], auditScope); !errors.Is(err, downstream.ErrRefreshLimited) {
		t.Fatalf("refusal just within the interval: %v", err)
	}
	if got := e.grants(entra.GrantClientCredentials) - before; got != 1 {
		t.Fatalf("refusals within the interval made %d token requests in all, want 1", got)
	}
	clk.Advance(time.Second)
	again, err := c.RefreshAppToken(ctx, fresh[0], auditScope)
	if err != nil || again.AccessToken == fresh[0].AccessToken {
		t.Fatalf("refusal after the interval: %v", err)
	}
	if st := c.Stats(); st.ForcedRefreshes != 2 || st.RefreshesLimited != 21 {
		t.Errorf("stats = %+v, want 2 forced refreshes and 21 limited", st)
	}
}

// TestRefreshOnBehalfOf: a refused OBO token is dropped with the rest of its
// tenant's, so another user of the tenant gets a new token without a forced
// refresh of their own; the bucket is per tenant.
func TestRefreshOnBehalfOf(t *testing.T) {
	e := newEnv(t, entra.Config{})
	clk := &frozenClock{now: time.Now()}
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.Now = clk.Now })
	ctx := context.Background()
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	bob := e.user(t, entra.HomeTenantID, "bob@home.handoff.test")
	erin := e.user(t, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	oldA, errA := c.OnBehalfOfUser(ctx, alice, notificationScope)
	oldB, errB := c.OnBehalfOfUser(ctx, bob, notificationScope)
	oldE, errE := c.OnBehalfOfUser(ctx, erin, notificationScope)
	if err := errors.Join(errA, errB, errE); err != nil {
		t.Fatal(err)
	}
	// The users' own tokens must still be accepted by Entra for OBO, so
	// the old key stays published; the new tokens are signed by the new one.
	if err := e.srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	newKid := e.srv.SigningKeyID()
	before := e.grants(entra.GrantOnBehalfOf)

	freshA, err := c.RefreshOnBehalfOf(ctx, alice.Token, alice.TenantID, oldA, notificationScope)
	if err != nil || kidOf(t, freshA.AccessToken) != newKid {
		t.Fatalf("alice's refresh: %v", err)
	}
	// Bob's cached token went with alice's: his refusal is answered with a
	// new token, though the tenant's bucket is empty.
	freshB, err := c.RefreshOnBehalfOf(ctx, bob.Token, bob.TenantID, oldB, notificationScope)
	if err != nil || kidOf(t, freshB.AccessToken) != newKid || claimsOf(t, freshB.AccessToken)["oid"] != entra.BobOID {
		t.Fatalf("bob's refresh: %v", err)
	}
	// Another tenant has its own bucket.
	freshE, err := c.RefreshOnBehalfOf(ctx, erin.Token, erin.TenantID, oldE, notificationScope)
	if err != nil || kidOf(t, freshE.AccessToken) != newKid {
		t.Fatalf("erin's refresh: %v", err)
	}
	if got := e.grants(entra.GrantOnBehalfOf) - before; got != 3 {
		t.Errorf("OBO token requests = %d, want 3", got)
	}
	if _, err := c.RefreshOnBehalfOf(ctx, alice.Token, alice.TenantID, freshA, notificationScope); !errors.Is(err, downstream.ErrRefreshLimited) {
		t.Errorf("second refusal within the interval: %v, want ErrRefreshLimited", err)
	}
	if st := c.Stats(); st.ForcedRefreshes != 2 || st.RefreshesLimited != 1 {
		t.Errorf("stats = %+v, want 2 forced refreshes (home, second tenant) and 1 limited", st)
	}
	clk.Advance(downstream.DefaultForcedRefreshInterval)
	if tok, err := c.RefreshOnBehalfOf(ctx, alice.Token, alice.TenantID, freshA, notificationScope); err != nil || tok.AccessToken == freshA.AccessToken {
		t.Errorf("refusal after the default interval: %v", err)
	}
	if _, err := c.RefreshOnBehalfOf(ctx, "", alice.TenantID, freshA, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
		t.Errorf("no user token: %v", err)
	}
	if _, err := c.RefreshOnBehalfOf(ctx, alice.Token, "common", freshA, notificationScope); !errors.Is(err, downstream.ErrNotDelegated) {
		t.Errorf("a tenant that is not a GUID: %v", err)
	}
}

func TestForcedRefreshIntervalRefused(t *testing.T) {
	cred, _ := downstream.ClientSecret("s")
	_, err := downstream.New(downstream.Config{Authority: "https://login.microsoftonline.com", HomeTenantID: entra.HomeTenantID,
		ClientID: entra.TaskAPIClientID, Credential: cred, ForcedRefreshInterval: -time.Second})
	if err == nil {
		t.Error("a negative ForcedRefreshInterval was accepted")
	}
}
