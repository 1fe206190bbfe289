package notifyapi_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// service is the Notification Service behind httptest's recorder, trusting
// an emulator, on a SQLite store, with tokens the Task API gets for a user
// On-Behalf-Of (real MSAL).
type service struct {
	srv   *entra.Server
	h     http.Handler
	st    *sqlite.Store
	alice string // OBO token: alice, via the Task API, Notify.Send and Notify.Read
}

func startService(t *testing.T) *service {
	t.Helper()
	srv := entratest.Start(t, entra.Config{})
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "notify.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	app, err := notifyapi.New(t.Context(), notifyapi.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.NotificationClientID, TenantIDs: []string{entra.HomeTenantID}, Callers: []string{entra.TaskAPIClientID},
		HTTPClient: srv.HTTPClient()}, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &service{srv: srv, h: app.Handler(), st: st, alice: oboToken(t, srv, "alice@home.handoff.test")}
}

// oboToken is the token the Task API gets for user On-Behalf-Of.
func oboToken(t *testing.T, srv *entra.Server, user string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(entra.HomeTenantID)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	u, err := pc.AcquireTokenByUsernamePassword(t.Context(), []string{"api://" + entra.TaskAPIClientID + "/access_as_user"},
		user, entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := confidential.NewCredFromSecret(entra.TaskAPISecret)
	cc, err := confidential.New(srv.Authority(entra.HomeTenantID), entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cc.AcquireTokenOnBehalfOf(t.Context(), u.AccessToken, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// forged is alice's OBO token with claims changed (nil deletes), validly
// signed by the emulator.
func (s *service) forged(t *testing.T, edits map[string]any) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(s.alice, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := s.srv.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *service) do(t *testing.T, method, path, token, body string) (int, map[string]any, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// TestNotifyAndList: a notification is recorded for the user the token
// names, and that user (only) lists it.
func TestNotifyAndList(t *testing.T) {
	s := startService(t)
	status, n, raw := s.do(t, "POST", "/api/notify", s.alice, `{"event":"task_created","task_title":"Ship it"}`)
	if status != http.StatusCreated || n["event"] != "task_created" || n["task_title"] != "Ship it" ||
		n["user_oid"] != entra.AliceOID || n["tenant_id"] != entra.HomeTenantID || n["caller_app"] != entra.TaskAPIClientID {
		t.Fatalf("notify: %d %s", status, raw)
	}
	status, list, raw := s.do(t, "GET", "/api/notifications", s.alice, "")
	items, _ := list["items"].([]any)
	if status != http.StatusOK || len(items) != 1 {
		t.Fatalf("list: %d %s", status, raw)
	}
	bob := oboToken(t, s.srv, "bob@home.handoff.test")
	if status, list, raw := s.do(t, "GET", "/api/notifications", bob, ""); status != http.StatusOK || len(list["items"].([]any)) != 0 {
		t.Errorf("bob's list: %d %s, want none of alice's", status, raw)
	}
}

// TestNotifyRefusals: no token, another audience and an expired token are
// 401; a token without the route's scope, from a caller app not allowed,
// or app-only is 403; nothing is recorded.
func TestNotifyRefusals(t *testing.T) {
	s := startService(t)
	tokens := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong audience", s.forged(t, map[string]any{"aud": entra.AuditClientID}), http.StatusUnauthorized},
		{"expired", s.forged(t, map[string]any{"exp": 1_000_000_000, "iat": 999_000_000, "nbf": 999_000_000}), http.StatusUnauthorized},
		{"no scope", s.forged(t, map[string]any{"scp": "Other.Scope"}), http.StatusForbidden},
		{"caller not allowed", s.forged(t, map[string]any{"azp": entra.DevClientID}), http.StatusForbidden},
		{"app-only", s.forged(t, map[string]any{"scp": nil, "idtyp": "app", "roles": []string{notifyapi.ScopeSend}}), http.StatusForbidden},
	}
	for _, rt := range notifyapi.Routes() {
		for _, tk := range tokens {
			body := ""
			if rt.Method == "POST" {
				body = `{"event":"task_created","task_title":"intruder"}`
			}
			if status, _, raw := s.do(t, rt.Method, rt.Pattern, tk.token, body); status != tk.want {
				t.Errorf("%s %s with %s: %d %s, want %d", rt.Method, rt.Pattern, tk.name, status, raw, tk.want)
			}
		}
	}
	// Each scope is its route's only: Notify.Read cannot send, Notify.Send cannot read.
	if status, _, raw := s.do(t, "POST", "/api/notify", s.forged(t, map[string]any{"scp": notifyapi.ScopeRead}),
		`{"event":"e","task_title":"t"}`); status != http.StatusForbidden {
		t.Errorf("send with Notify.Read only: %d %s", status, raw)
	}
	if status, _, raw := s.do(t, "GET", "/api/notifications", s.forged(t, map[string]any{"scp": notifyapi.ScopeSend}), ""); status != http.StatusForbidden {
		t.Errorf("read with Notify.Send only: %d %s", status, raw)
	}
	p, err := s.st.ListNotifications(t.Context(), entra.HomeTenantID, entra.AliceOID, store.MaxPageSize, "")
	if err != nil || len(p.Items) != 0 {
		t.Errorf("notifications after the refusals: %+v, %v", p.Items, err)
	}
}

// TestNotifyValidation: each field is required and at most MaxFieldLength
// characters; the body is strict JSON; paging is checked.
func TestNotifyValidation(t *testing.T) {
	s := startService(t)
	long := strings.Repeat("é", notifyapi.MaxFieldLength+1)
	for body, want := range map[string]string{
		`{"task_title":"t"}`:                        "event is required",
		`{"event":"e"}`:                             "task_title is required",
		`{"event":"` + long + `","task_title":"t"}`: "event is required, at most 200",
		`{"event":"e","task_title":"` + long + `"}`: "task_title is required, at most 200",
		`{"event":"e","task_title":"t","x":1}`:      `unknown field "x"`,
		`[]`:                                        "JSON object",
	} {
		if status, p, raw := s.do(t, "POST", "/api/notify", s.alice, body); status != http.StatusBadRequest ||
			!strings.Contains(p["detail"].(string), want) {
			t.Errorf("%s: %d %s, want 400 naming %q", body, status, raw, want)
		}
	}
	if status, _, raw := s.do(t, "POST", "/api/notify", s.alice, `{"event":"e","task_title":"`+strings.Repeat("é", 200)+`"}`); status != http.StatusCreated {
		t.Errorf("200 characters: %d %s, want 201", status, raw)
	}
	for _, q := range []string{"limit=0", "limit=abc", "cursor=not-a-cursor"} {
		if status, _, raw := s.do(t, "GET", "/api/notifications?"+q, s.alice, ""); status != http.StatusBadRequest {
			t.Errorf("list ?%s: %d %s, want 400", q, status, raw)
		}
	}
}
