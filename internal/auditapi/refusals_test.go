package auditapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/auditapi"
)

// forged is tok with claims changed (nil deletes), validly signed by the emulator.
func (s *service) forged(t *testing.T, tok string, edits map[string]any) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
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
	out, err := s.srv.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// userToken is alice's delegated token for the Task API: a user's token,
// never accepted by the Audit Service whatever its audience.
func userToken(t *testing.T, srv *entra.Server) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(entra.HomeTenantID)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	u, err := pc.AcquireTokenByUsernamePassword(t.Context(), []string{"api://" + entra.TaskAPIClientID + "/access_as_user"},
		"alice@home.handoff.test", entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	return u.AccessToken
}

// TestAuditRefusals: both routes refuse no token, another audience and an
// expired token (401), a delegated (user) token even with the right
// audience and roles, and a token without the route's role (403); a writer
// not in Writers cannot write even with AuditLog.Write.
func TestAuditRefusals(t *testing.T) {
	s := startService(t)
	event := map[string]any{"event_id": "ev-1", "action": "task.created", "resource_id": "task-1",
		"actor": entra.AliceOID, "tenant_id": entra.HomeTenantID}
	user := s.forged(t, userToken(t, s.srv), map[string]any{"aud": entra.AuditClientID,
		"roles": []string{auditapi.RoleWrite, auditapi.RoleRead}})
	for _, c := range []struct {
		name, method, token string
		want                int
	}{
		{"no token", "POST", "", http.StatusUnauthorized},
		{"no token", "GET", "", http.StatusUnauthorized},
		{"wrong audience", "POST", s.forged(t, s.writer, map[string]any{"aud": entra.NotificationClientID}), http.StatusUnauthorized},
		{"wrong audience", "GET", s.forged(t, s.reader, map[string]any{"aud": entra.NotificationClientID}), http.StatusUnauthorized},
		{"expired", "POST", s.forged(t, s.writer, map[string]any{"exp": 1_000_000_000}), http.StatusUnauthorized},
		{"delegated", "POST", user, http.StatusForbidden},
		{"delegated", "GET", user, http.StatusForbidden},
		{"no role", "POST", s.forged(t, s.writer, map[string]any{"roles": nil}), http.StatusForbidden},
		{"writer reads", "GET", s.writer, http.StatusForbidden},
		{"reader writes", "POST", s.reader, http.StatusForbidden},
		{"writer not allowed", "POST", s.forged(t, s.reader, map[string]any{"roles": []string{auditapi.RoleWrite}}), http.StatusForbidden},
	} {
		var body any
		if c.method == "POST" {
			body = event
		}
		if status, raw := s.do(t, c.method, c.token, body); status != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.name, status, raw, c.want)
		}
	}
	status, raw := s.do(t, "GET", s.reader, nil)
	if status != http.StatusOK || strings.Contains(string(raw), "ev-1") {
		t.Errorf("entries after the refusals: %d %s, want none", status, raw)
	}
}

// TestAuditValidation: each field is required and at most MaxFieldLength
// characters; the body is strict JSON.
func TestAuditValidation(t *testing.T) {
	s := startService(t)
	fields := []string{"event_id", "action", "resource_id", "actor", "tenant_id"}
	full := func() map[string]any {
		m := map[string]any{}
		for _, f := range fields {
			m[f] = "v-" + f
		}
		return m
	}
	for _, f := range fields {
		for name, v := range map[string]any{"missing": nil, "empty": "", "too long": strings.Repeat("x", auditapi.MaxFieldLength+1)} {
			m := full()
			if v == nil {
				delete(m, f)
			} else {
				m[f] = v
			}
			status, raw := s.do(t, "POST", s.writer, m)
			if status != http.StatusBadRequest || !strings.Contains(string(raw), f+" is required, at most 200") {
				t.Errorf("%s %s: %d %s, want 400 naming it", f, name, status, raw)
			}
		}
	}
	m := full()
	m["extra"] = "x"
	if status, raw := s.do(t, "POST", s.writer, m); status != http.StatusBadRequest || !strings.Contains(string(raw), `unknown field \"extra\"`) {
		t.Errorf("unknown field: %d %s", status, raw)
	}
	if status, raw := s.do(t, "POST", s.writer, []string{"x"}); status != http.StatusBadRequest {
		t.Errorf("an array: %d %s", status, raw)
	}
	if status, raw := s.do(t, "POST", s.writer, full()); status != http.StatusCreated {
		t.Errorf("a valid entry: %d %s", status, raw)
	}
}
