package entra_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestRefuseRefreshTokens: the control refuses exactly the number of SPA
// refresh-token redemptions asked for, with Entra's invalid_grant
// (AADSTS700082, which MSAL.js answers with a silent iframe, then
// interaction), and the same refresh token works again afterwards.
func TestRefuseRefreshTokens(t *testing.T) {
	srv := start(t)
	verifier, challenge := pkce()
	loc := newBrowser(t, srv).signIn(spaAuthURL(srv, entra.HomeTenantID, challenge), entra.AliceOID, "alice@home.handoff.test")
	frag, _ := url.ParseQuery(loc.Fragment)
	status, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", codeForm(frag.Get("code"), verifier))
	if status != http.StatusOK {
		t.Fatalf("SPA redemption: %d %v", status, body)
	}
	rtForm := url.Values{"grant_type": {"refresh_token"}, "client_id": {entra.SPAClientID},
		"refresh_token": {body["refresh_token"].(string)}, "scope": {taskAPIScope + " openid offline_access"}}
	refresh := func() (int, map[string]any) {
		t.Helper()
		status, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", rtForm)
		return status, body
	}

	if got := adminPost(t, srv, "/_emulator/refresh-tokens/refuse", `{"count":2}`, true); got != http.StatusNoContent {
		t.Fatalf("refuse: %d", got)
	}
	for i := range 2 {
		if status, body := refresh(); status != http.StatusBadRequest || body["error"] != "invalid_grant" || errorCode(body) != 700082 {
			t.Errorf("refresh %d while refused: %d %v, want invalid_grant AADSTS700082", i+1, status, body)
		}
	}
	if status, body := refresh(); status != http.StatusOK {
		t.Errorf("refresh after the refusals ran out: %d %v", status, body)
	}

	// count 0 clears what is left.
	srv.RefuseRefreshTokens(5)
	if got := adminPost(t, srv, "/_emulator/refresh-tokens/refuse", `{"count":0}`, true); got != http.StatusNoContent {
		t.Fatalf("refuse 0: %d", got)
	}
	if status, body := refresh(); status != http.StatusOK {
		t.Errorf("refresh after clearing: %d %v", status, body)
	}

	// Other grants are untouched by a refusal.
	srv.RefuseRefreshTokens(1)
	c := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	if _, err := c.AcquireTokenByCredential(t.Context(), []string{auditScope}); err != nil {
		t.Errorf("client credentials while a refresh refusal is pending: %v", err)
	}
	if status, _ := refresh(); status != http.StatusBadRequest {
		t.Errorf("the pending refusal was spent elsewhere: refresh answered %d", status)
	}
}

// TestRefuseRefreshTokensAdminOnly: the control is an admin route: it needs
// the admin header, names a bounded count, and grants no web page a preflight.
func TestRefuseRefreshTokensAdminOnly(t *testing.T) {
	srv := start(t)
	const path = "/_emulator/refresh-tokens/refuse"
	if got := adminPost(t, srv, path, `{"count":1}`, false); got != http.StatusForbidden {
		t.Errorf("without %s: %d, want 403", entra.AdminHeader, got)
	}
	for _, bad := range []string{`{}`, `{"count":-1}`, `{"count":1001}`, `{"count":"1"}`, `{"count":1,"grant":"x"}`} {
		if got := adminPost(t, srv, path, bad, true); got != http.StatusBadRequest {
			t.Errorf("refuse %s: %d, want 400", bad, got)
		}
	}
	if got := adminPost(t, srv, path, `{"count":1000}`, true); got != http.StatusNoContent {
		t.Errorf("refuse at the limit (1000): %d", got)
	}
	// A caller that is not on loopback is refused, header or not.
	remote := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"count":1}`))
	remote.RemoteAddr = "203.0.113.7:40000"
	remote.Header.Set(entra.AdminHeader, "1")
	rec := httptest.NewRecorder()
	srv.RefuseRefreshTokens(0)
	srv.ServeHTTP(rec, remote)
	if rec.Code != http.StatusForbidden {
		t.Errorf("from %s: %d, want 403", remote.RemoteAddr, rec.Code)
	}
	req, _ := http.NewRequest(http.MethodOptions, srv.BaseURL()+path, nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-emulator-admin")
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("preflight: %s, want a refusal", resp.Status)
	}
	for name := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("preflight answered with %s", name)
		}
	}
}

func adminPost(t *testing.T, srv *entra.Server, path, body string, admin bool) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.BaseURL()+path, strings.NewReader(body))
	if admin {
		req.Header.Set(entra.AdminHeader, "1")
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
