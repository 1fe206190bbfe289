package entra_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// taskAPIValidator checks tokens as the Task API does (internal/taskapi).
func taskAPIValidator(t *testing.T, srv *entra.Server) *entraauth.Validator {
	t.Helper()
	v, err := entraauth.New(t.Context(), srv.BaseURL(), entraauth.Config{
		ClientID:   entra.TaskAPIClientID,
		TenantIDs:  []string{entra.HomeTenantID, entra.SecondTenantID},
		HTTPClient: srv.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mint(t *testing.T, srv *entra.Server, req entra.MintRequest) string {
	t.Helper()
	resp, err := entra.Mint(t.Context(), srv.HTTPClient(), srv.BaseURL(), req)
	if err != nil {
		t.Fatalf("mint %+v: %v", req, err)
	}
	return resp.AccessToken
}

func TestMintedTokenAccepted(t *testing.T) {
	srv := start(t)
	v := taskAPIValidator(t, srv)
	id, err := v.Validate(t.Context(), mint(t, srv, entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID}))
	if err != nil {
		t.Fatalf("the Task API refuses bob's minted token: %v", err)
	}
	if id.ObjectID != entra.BobOID || !id.HasRole(entra.RoleEditor) || !id.HasScope(entra.ScopeAccessAsUser) || id.AppOnly {
		t.Errorf("identity = %+v, want bob, Editor, access_as_user, delegated", id)
	}
	if id.CallerAppID != entra.SPAClientID {
		t.Errorf("azp = %s, want the first consented client (the SPA)", id.CallerAppID)
	}

	app, err := v.Validate(t.Context(), mint(t, srv, entra.MintRequest{Client: entra.OperatorClientID, Resource: "api://" + entra.TaskAPIClientID}))
	if err != nil {
		t.Fatalf("app-only token: %v", err)
	}
	if !app.AppOnly || app.CallerAppID != entra.OperatorClientID {
		t.Errorf("app identity = %+v", app)
	}

	// --claims merges last: a value replaces, null removes.
	tok := mint(t, srv, entra.MintRequest{User: "alice@home.handoff.test", Resource: entra.TaskAPIClientID,
		Claims: map[string]any{"roles": []string{"Reader"}, "name": nil}})
	c := claims(t, tok)
	if _, ok := c["name"]; ok || len(c["roles"].([]any)) != 1 || c["roles"].([]any)[0] != "Reader" {
		t.Errorf("claims merged wrong: %v", c)
	}
	// --lifetime.
	resp, err := entra.Mint(t.Context(), srv.HTTPClient(), srv.BaseURL(), entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, LifetimeSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	c = claims(t, resp.AccessToken)
	if exp, nbf := c["exp"].(float64), c["nbf"].(float64); exp-nbf != 600 || resp.ExpiresIn != 600 {
		t.Errorf("lifetime 600 s: exp-nbf = %v, expires_in = %d", exp-nbf, resp.ExpiresIn)
	}
}

// Each "wrong on purpose" token is rejected, for its own reason.
func TestMintedTokensWrongOnPurpose(t *testing.T) {
	srv := start(t)
	v := taskAPIValidator(t, srv)
	bob := entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID}
	cases := []struct {
		name string
		edit func(*entra.MintRequest)
		want string
	}{
		{"expired", func(r *entra.MintRequest) { r.Expired = true }, "the token has expired"},
		{"not yet valid", func(r *entra.MintRequest) { r.NotYetValid = true }, "not valid yet"},
		{"audience", func(r *entra.MintRequest) { r.Audience = entra.NotificationClientID }, "not for this API"},
		{"issuer", func(r *entra.MintRequest) {
			r.Issuer = "https://login.microsoftonline.com/" + entra.HomeTenantID + "/v2.0"
		}, "issuer"},
		{"tenant", func(r *entra.MintRequest) { r.User, r.Tenant = "frank", entra.ThirdTenantID }, "tenant is not allowed"},
		{"bad signature", func(r *entra.MintRequest) { r.BadSignature = true }, "signature does not verify"},
		{"unknown kid", func(r *entra.MintRequest) { r.UnknownKID = true }, "signing key (kid)"},
		{"v1", func(r *entra.MintRequest) { r.V1 = true }, "v1 tokens are not accepted"},
		{"claims", func(r *entra.MintRequest) { r.Claims = map[string]any{"tid": "not-a-guid"} }, "tid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := bob
			tc.edit(&req)
			_, err := v.Validate(t.Context(), mint(t, srv, req))
			var ae *entraauth.Error
			if !errors.As(err, &ae) || !strings.Contains(ae.Description, tc.want) {
				t.Fatalf("Validate = %v, want a rejection naming %q", err, tc.want)
			}
			if ae.Expired() != (tc.name == "expired") {
				t.Errorf("Expired() = %v", ae.Expired())
			}
		})
	}
}

func TestMintV1Claims(t *testing.T) {
	srv := start(t)
	c := claims(t, mint(t, srv, entra.MintRequest{User: "bob", Resource: "api://" + entra.TaskAPIClientID, V1: true}))
	if c["ver"] != "1.0" || c["iss"] != srv.IssuerV1(entra.HomeTenantID) || c["aud"] != "api://"+entra.TaskAPIClientID || c["upn"] != "bob@home.handoff.test" {
		t.Errorf("v1 claims = %v", c)
	}
}

func TestMintRefusals(t *testing.T) {
	srv := start(t)
	cases := []struct {
		req  entra.MintRequest
		want string
	}{
		{entra.MintRequest{User: "bob"}, "resource"},
		{entra.MintRequest{User: "nobody", Resource: entra.TaskAPIClientID}, "in no tenant"},
		{entra.MintRequest{User: "bob", Tenant: entra.SecondTenantID, Resource: entra.TaskAPIClientID}, "not in tenant"},
		{entra.MintRequest{Resource: entra.TaskAPIClientID}, "needs a client"},
		{entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, Scopes: []string{"Tasks.Nuke"}}, "exposes no scope"},
		{entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, LifetimeSeconds: 25 * 3600}, "lifetime"},
		{entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, LifetimeSeconds: -1}, "lifetime"},
		{entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, Expired: true, NotYetValid: true}, "both"},
		{entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID, BadSignature: true, UnknownKID: true}, "one of"},
		{entra.MintRequest{Client: entra.AuditClientID, Tenant: entra.SecondTenantID, Resource: entra.TaskAPIClientID}, "no service principal"},
	}
	for _, tc := range cases {
		_, err := entra.Mint(t.Context(), srv.HTTPClient(), srv.BaseURL(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Mint(%+v) = %v, want an error naming %q", tc.req, err, tc.want)
		}
	}
}

// The mint endpoint is an admin control: loopback callers with the admin
// header only, and no CORS grant for a web page.
func TestMintGuard(t *testing.T) {
	srv := start(t)
	body := `{"user":"bob","resource":"` + entra.TaskAPIClientID + `"}`
	send := func(remote string, header bool, origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, srv.BaseURL()+"/_emulator/token", strings.NewReader(body))
		r.RemoteAddr = remote
		if header {
			r.Header.Set(entra.AdminHeader, "1")
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	if w := send("203.0.113.7:5000", true, ""); w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "access_token") {
		t.Errorf("non-loopback caller: %d %s", w.Code, w.Body)
	}
	if w := send("127.0.0.1:5000", false, ""); w.Code != http.StatusForbidden {
		t.Errorf("no admin header: %d %s", w.Code, w.Body)
	}
	w := send("127.0.0.1:5000", true, "https://evil.example")
	if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("loopback admin call: %d, CORS %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}
	r := httptest.NewRequest(http.MethodOptions, srv.BaseURL()+"/_emulator/token", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Access-Control-Request-Headers", entra.AdminHeader)
	pw := httptest.NewRecorder()
	srv.ServeHTTP(pw, r)
	if pw.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a preflight to the mint endpoint is granted: %v", pw.Header())
	}
	if w := send("127.0.0.1:5000", true, ""); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	big := httptest.NewRequest(http.MethodPost, srv.BaseURL()+"/_emulator/token", strings.NewReader(`{"claims":{"x":"`+strings.Repeat("a", 70<<10)+`"}}`))
	big.RemoteAddr = "127.0.0.1:5000"
	big.Header.Set(entra.AdminHeader, "1")
	bw := httptest.NewRecorder()
	srv.ServeHTTP(bw, big)
	if bw.Code != http.StatusBadRequest || !strings.Contains(bw.Body.String(), "too large") {
		t.Errorf("a body over the limit: %d %s", bw.Code, bw.Body)
	}
}

func TestMintNoEmulator(t *testing.T) {
	srv := start(t)
	_, err := entra.Mint(context.Background(), srv.HTTPClient(), "https://127.0.0.1:1", entra.MintRequest{User: "bob", Resource: entra.TaskAPIClientID})
	if !errors.Is(err, entra.ErrNoEmulator) {
		t.Errorf("Mint with nothing listening = %v, want ErrNoEmulator", err)
	}
}

// TestMintWithCAFile is devstack's path: a client trusting the emulator's
// ca.pem alone, and Mint.
func TestMintWithCAFile(t *testing.T) {
	srv := start(t)
	hc, err := entra.ClientTrusting(srv.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := entra.Mint(t.Context(), hc, srv.BaseURL(), entra.MintRequest{User: "carol", Resource: entra.TaskAPIClientID})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := taskAPIValidator(t, srv).Validate(t.Context(), resp.AccessToken); err != nil || !id.HasRole(entra.RoleReader) {
		t.Errorf("carol's token: %+v, %v", id, err)
	}
	if _, err := entra.ClientTrusting([]byte("not a certificate")); err == nil {
		t.Error("ClientTrusting accepted no certificate")
	}
	// A client that trusts another CA is refused by TLS, not answered.
	other := start(t)
	otherClient, _ := entra.ClientTrusting(other.CAPEM())
	if _, err := entra.Mint(t.Context(), otherClient, srv.BaseURL(), entra.MintRequest{User: "carol", Resource: entra.TaskAPIClientID}); err == nil {
		t.Error("a client trusting another emulator's CA got a token")
	}
}
