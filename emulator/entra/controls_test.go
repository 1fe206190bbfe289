package entra_test

import (
	"context"
	"encoding/json"

	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestConcurrentTokenRequests: hundreds of clients at once, each with its own
// MSAL client (so each makes a real request), all succeed.
func TestConcurrentTokenRequests(t *testing.T) {
	srv := start(t)
	alice := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
			var err error
			if i%2 == 0 {
				_, err = c.AcquireTokenByCredential(context.Background(), []string{auditScope})
			} else {
				_, err = c.AcquireTokenOnBehalfOf(context.Background(), alice.AccessToken, []string{notificationScope})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := srv.Stats()
	if st.Issued[entra.GrantClientCredentials] != n/2 || st.Issued[entra.GrantOnBehalfOf] != n/2 {
		t.Errorf("issued = %v, want %d of each", st.Issued, n/2)
	}
}

func TestFailureInjection(t *testing.T) {
	srv := start(t)
	ctx := context.Background()
	taskAPI := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	alice := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)

	// Only client credentials fail; OBO is untouched.
	srv.FailTokenRequests(2, entra.GrantClientCredentials)
	if _, err := taskAPI.AcquireTokenOnBehalfOf(ctx, alice.AccessToken, []string{notificationScope}); err != nil {
		t.Fatalf("OBO while CC fails: %v", err)
	}
	for i := range 2 {
		_, err := taskAPI.AcquireTokenByCredential(ctx, []string{auditScope})
		if aadsts(err) != 90033 || !strings.Contains(err.Error(), "503") {
			t.Fatalf("injected failure %d: %v", i, err)
		}
	}
	if _, err := taskAPI.AcquireTokenByCredential(ctx, []string{auditScope}); err != nil {
		t.Fatalf("after the injected failures: %v", err)
	}

	srv.FailJWKSRequests(1)
	resp, err := srv.HTTPClient().Get(srv.BaseURL() + "/common/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("JWKS with an injected failure: %s", resp.Status)
	}
	var keys struct{ Keys []map[string]any }
	getJSON(t, srv.HTTPClient(), srv.BaseURL()+"/common/discovery/v2.0/keys", &keys)
	if len(keys.Keys) == 0 {
		t.Error("JWKS after the injected failure is empty")
	}

	// Latency delays token requests; a client deadline shorter than it fails.
	srv.SetTokenLatency(2 * time.Second)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	other := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	if _, err := other.AcquireTokenByCredential(short, []string{auditScope}); err == nil {
		t.Error("a token request with latency beyond the caller's deadline succeeded")
	}
	srv.SetTokenLatency(0)
}

// TestKeyRotation: after a rotation new tokens carry the new kid, both keys
// are published, and retiring the old key unpublishes it.
func TestKeyRotation(t *testing.T) {
	srv := start(t)
	before := srv.SigningKeyID()
	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	after := srv.SigningKeyID()
	if after == before {
		t.Fatal("rotation kept the signing key")
	}
	tok := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	if kid := header(t, tok.AccessToken)["kid"]; kid != after {
		t.Errorf("new token kid = %v, want %s", kid, after)
	}
	if kids := publishedKids(t, srv); !kids[before] || !kids[after] {
		t.Errorf("published kids %v, want both %s and %s", kids, before, after)
	}
	if err := srv.RetireOldSigningKeys(); err != nil {
		t.Fatal(err)
	}
	if kids := publishedKids(t, srv); kids[before] || !kids[after] {
		t.Errorf("after retiring: published kids %v", kids)
	}
}

// TestAdminEndpoint drives the controls over HTTP, as black-box tests do.
func TestAdminEndpoint(t *testing.T) {
	srv := start(t)
	hc := srv.HTTPClient()
	post := func(path, body string, admin bool) int {
		req, _ := http.NewRequest(http.MethodPost, srv.BaseURL()+path, strings.NewReader(body))
		if admin {
			req.Header.Set(entra.AdminHeader, "1")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("/_emulator/keys/rotate", `{}`, false); got != http.StatusForbidden {
		t.Errorf("admin request without %s: %d, want 403", entra.AdminHeader, got)
	}
	before := srv.SigningKeyID()
	if got := post("/_emulator/keys/rotate", `{"retire_old":true}`, true); got != http.StatusNoContent {
		t.Fatalf("rotate: %d", got)
	}
	if kids := publishedKids(t, srv); len(kids) != 1 || kids[before] {
		t.Errorf("after rotate+retire: %v", kids)
	}
	if got := post("/_emulator/fail", `{"endpoint":"token","count":1}`, true); got != http.StatusNoContent {
		t.Fatalf("fail: %d", got)
	}
	c := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	if _, err := c.AcquireTokenByCredential(context.Background(), []string{auditScope}); aadsts(err) != 90033 {
		t.Errorf("token request after /_emulator/fail: %v", err)
	}
	for _, bad := range []string{`{"endpoint":"nope","count":1}`, `{"endpoint":"token","count":-1}`, `{"bogus":1}`} {
		if got := post("/_emulator/fail", bad, true); got != http.StatusBadRequest {
			t.Errorf("fail %s: %d, want 400", bad, got)
		}
	}
	if got := post("/_emulator/latency", `{"token_ms":5}`, true); got != http.StatusNoContent {
		t.Errorf("latency: %d", got)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.BaseURL()+"/_emulator/stats", nil)
	req.Header.Set(entra.AdminHeader, "1")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st entra.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Grants[entra.GrantClientCredentials] != 1 || st.GrantsByTenant[entra.GrantClientCredentials][entra.HomeTenantID] != 1 || st.Requests[entra.EndpointJWKS] == 0 {
		t.Errorf("stats = %+v", st)
	}
	if got := post("/_emulator/stats/reset", ``, true); got != http.StatusNoContent {
		t.Errorf("reset: %d", got)
	}
	if st := srv.Stats(); len(st.Grants) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func TestCORS(t *testing.T) {
	srv := start(t)
	for _, path := range []string{"/organizations/v2.0/.well-known/openid-configuration", "/common/discovery/v2.0/keys", "/organizations/oauth2/v2.0/token"} {
		req, _ := http.NewRequest(http.MethodOptions, srv.BaseURL()+path, nil)
		req.Header.Set("Origin", "http://localhost:3000")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := srv.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("preflight %s: %s %v", path, resp.Status, resp.Header)
		}
	}
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	var h map[string]any
	b := decodeSegment(t, strings.Split(tok, ".")[0])
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func publishedKids(t *testing.T, srv *entra.Server) map[string]bool {
	t.Helper()
	var keys struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	getJSON(t, srv.HTTPClient(), srv.BaseURL()+"/common/discovery/v2.0/keys", &keys)
	kids := map[string]bool{}
	for _, k := range keys.Keys {
		kids[k.Kid] = true
	}
	return kids
}
