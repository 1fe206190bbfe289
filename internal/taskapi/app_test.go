package taskapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/store"
)

// newTask creates a task as alice and returns its id.
func (h *harness) newTask(t *testing.T, title string) string {
	t.Helper()
	r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"`+title+`"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create %q: %d %s", title, r.status, r.raw)
	}
	return str(r.body["id"])
}

// TestRBACMatrix: every route as each role of the Task API (Admin, Editor,
// Reader, none): what the role may do succeeds with its body, the rest is
// refused 403 and changes nothing.
func TestRBACMatrix(t *testing.T) {
	h := newHarness(t, nil)
	users := []struct{ name, token string }{
		{"Admin", h.alice}, {"Editor", h.bob},
		{"Reader", userToken(t, h.srv, "carol@home.handoff.test")},
		{"none", userToken(t, h.srv, "dave@home.handoff.test")},
	}
	// want is the status per user, in the order above.
	routes := []struct {
		method, path, body string
		want               [4]int
	}{
		{"GET", "/api/tasks", "", [4]int{200, 200, 200, 403}},
		{"POST", "/api/tasks", `{"title":"by role"}`, [4]int{201, 201, 403, 403}},
		{"GET", "/api/tasks/{id}", "", [4]int{200, 200, 200, 403}},
		{"PATCH", "/api/tasks/{id}", `{"completed":true}`, [4]int{200, 200, 403, 403}},
		{"DELETE", "/api/tasks/{id}", "", [4]int{200, 403, 403, 403}},
		{"GET", "/api/me", "", [4]int{200, 200, 200, 200}},
		{"GET", "/api/outbox", "", [4]int{200, 403, 403, 403}},
	}
	for _, rt := range routes {
		for i, u := range users {
			id := h.newTask(t, "matrix")
			r := h.do(t, rt.method, strings.ReplaceAll(rt.path, "{id}", id), u.token, rt.body)
			if r.status != rt.want[i] {
				t.Errorf("%s %s as %s: %d %s, want %d", rt.method, rt.path, u.name, r.status, r.raw, rt.want[i])
				continue
			}
			if r.status == http.StatusForbidden {
				if got, err := h.st.GetTask(t.Context(), entra.HomeTenantID, id); err != nil || got.Completed {
					t.Errorf("%s %s as %s refused, but the task is now %+v, %v", rt.method, rt.path, u.name, got, err)
				}
				continue
			}
			checkSuccess(t, h, rt.method, rt.path, id, r)
		}
	}
}

// checkSuccess checks the body of a route's success.
func checkSuccess(t *testing.T, h *harness, method, path, id string, r answer) {
	t.Helper()
	switch method + " " + path {
	case "GET /api/tasks", "GET /api/outbox":
		if _, ok := r.body["items"].([]any); !ok {
			t.Errorf("%s %s: no items: %s", method, path, r.raw)
		}
	case "POST /api/tasks":
		if r.body["title"] != "by role" || r.body["notification_status"] != NotificationSent || r.body["audit_status"] != AuditLogged ||
			r.header.Get("ETag") == "" || r.header.Get("Location") != "/api/tasks/"+str(r.body["id"]) {
			t.Errorf("create: %v %s", r.header, r.raw)
		}
	case "GET /api/tasks/{id}":
		if r.body["id"] != id || r.header.Get("ETag") == "" {
			t.Errorf("get: %s", r.raw)
		}
	case "PATCH /api/tasks/{id}":
		if r.body["completed"] != true || r.body["audit_status"] != AuditLogged || r.header.Get("ETag") == "" {
			t.Errorf("patch: %s", r.raw)
		}
	case "DELETE /api/tasks/{id}":
		if r.body["deleted"] != true || r.body["id"] != id || r.body["audit_status"] != AuditLogged {
			t.Errorf("delete: %s", r.raw)
		}
		if _, err := h.st.GetTask(t.Context(), entra.HomeTenantID, id); err == nil {
			t.Errorf("task %s still there after delete", id)
		}
	case "GET /api/me":
		if r.body["tid"] != entra.HomeTenantID || r.body["oid"] == "" || r.body["client_app_id"] != entra.DevClientID {
			t.Errorf("me: %s", r.raw)
		}
	default:
		t.Fatalf("no check for %s %s", method, path)
	}
}

// claimsOf decodes a token's claims (the signature is the emulator's).
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// forged is alice's token with claims changed (nil deletes), validly signed
// by the emulator: a token a check must refuse.
func (h *harness) forged(t *testing.T, edits map[string]any) string {
	t.Helper()
	c := claimsOf(t, h.alice)
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := h.srv.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRefusals: every route refuses a request with no token, a token for
// another audience, an expired one (401), one without access_as_user and an
// app-only token even when it carries the Admin role (403); none changes
// anything.
func TestRefusals(t *testing.T) {
	h := newHarness(t, nil)
	id := h.newTask(t, "kept")
	now := time.Now()
	tokens := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong audience", h.forged(t, map[string]any{"aud": entra.NotificationClientID}), http.StatusUnauthorized},
		{"expired", h.forged(t, map[string]any{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix(),
			"nbf": now.Add(-2 * time.Hour).Unix()}), http.StatusUnauthorized},
		{"missing scope", h.forged(t, map[string]any{"scp": "Tasks.Other"}), http.StatusForbidden},
		{"app-only with Admin", h.forged(t, map[string]any{"scp": nil, "idtyp": "app", "roles": []string{RoleAdmin},
			"oid": entra.TaskAPIIdentityObjectID, "sub": entra.TaskAPIIdentityObjectID}), http.StatusForbidden},
	}
	for _, rt := range Routes() {
		path := strings.ReplaceAll(rt.Pattern, "{id}", id)
		for _, tk := range tokens {
			body := ""
			if rt.Method == "POST" || rt.Method == "PATCH" {
				body = `{"title":"intruder"}`
			}
			r := h.do(t, rt.Method, path, tk.token, body)
			if r.status != tk.want || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: %d %v %s, want %d with a challenge", rt.Method, rt.Pattern, tk.name, r.status, r.header, r.raw, tk.want)
			}
		}
	}
	if tasks := h.tasks(t); len(tasks) != 1 || tasks[0].Title != "kept" {
		t.Errorf("tasks after the refusals: %+v", tasks)
	}
}

// TestValidationErrors: each request the Task API refuses as invalid, with
// a 400 (or 404, 412, 428) naming what is wrong.
func TestValidationErrors(t *testing.T) {
	h := newHarness(t, nil)
	id := h.newTask(t, "valid")
	long := strings.Repeat("x", 201)
	cases := []struct {
		method, path, body string
		headers            []string
		status             int
		detail             string
	}{
		{"POST", "/api/tasks", `{}`, nil, 400, "title"},
		{"POST", "/api/tasks", `{"title":"   "}`, nil, 400, "title"},
		{"POST", "/api/tasks", `{"title":"` + long + `"}`, nil, 400, "title"},
		{"POST", "/api/tasks", `{"title":"a","description":"` + strings.Repeat("d", 2001) + `"}`, nil, 400, "description"},
		{"POST", "/api/tasks", `not json`, nil, 400, "JSON"},
		{"PATCH", "/api/tasks/" + id, `{}`, nil, 400, "title, completed or both"},
		{"PATCH", "/api/tasks/" + id, `{"title":""}`, nil, 400, "title"},
		{"PATCH", "/api/tasks/" + id, `{"completed":"yes"}`, nil, 400, "completed"},
		{"PATCH", "/api/tasks/" + id, `{"completed":true}`, []string{"If-Match", `"stale"`}, 412, ""},
		{"DELETE", "/api/tasks/" + id, ``, []string{"If-Match", `"stale"`}, 412, ""},
		{"GET", "/api/tasks/nope", ``, nil, 404, ""},
		{"PATCH", "/api/tasks/nope", `{"completed":true}`, nil, 404, ""},
		{"DELETE", "/api/tasks/nope", ``, nil, 404, ""},
		{"GET", "/api/tasks?limit=0", ``, nil, 400, "limit"},
		{"GET", "/api/tasks?cursor=not-a-cursor", ``, nil, 400, "cursor"},
		{"GET", "/api/outbox?state=delivered", ``, nil, 400, "state must be dead or pending"},
	}
	for _, c := range cases {
		r := h.do(t, c.method, c.path, h.alice, c.body, c.headers...)
		if r.status != c.status || !strings.Contains(str(r.body["detail"]), c.detail) {
			t.Errorf("%s %s %s: %d %s, want %d naming %q", c.method, c.path, c.body, r.status, r.raw, c.status, c.detail)
		}
	}
	if got, err := h.st.GetTask(t.Context(), entra.HomeTenantID, id); err != nil || got.Title != "valid" || got.Completed {
		t.Errorf("task after the refused requests: %+v, %v", got, err)
	}
}

// TestNotificationFailures: the create succeeds whatever the Notification
// Service does, and says why the notification failed; the audit is logged.
func TestNotificationFailures(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct {
		name   string
		fault  int32
		reason string
	}{
		{"503", http.StatusServiceUnavailable, ReasonUnavailable},
		{"500", http.StatusInternalServerError, ReasonUnavailable},
		{"429", http.StatusTooManyRequests, ReasonUnavailable},
		{"400", http.StatusBadRequest, ReasonRejected},
	} {
		h.notifyFault.Store(c.fault)
		r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"notify `+c.name+`"}`)
		f, _ := r.body["notification_failure"].(map[string]any)
		if r.status != http.StatusCreated || r.body["notification_status"] != NotificationFailed || r.body["audit_status"] != AuditLogged ||
			f["reason"] != c.reason || f["status"] != float64(c.fault) {
			t.Errorf("notification %s: %d %s", c.name, r.status, r.raw)
		}
	}
	h.notifyFault.Store(0)
	h.notifySrv.Close()
	r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"notify down"}`)
	f, _ := r.body["notification_failure"].(map[string]any)
	if r.status != http.StatusCreated || r.body["notification_status"] != NotificationFailed || f["reason"] != ReasonUnavailable ||
		r.body["audit_status"] != AuditLogged {
		t.Errorf("notification down: %d %s", r.status, r.raw)
	}
	if n := len(h.tasks(t)); n != 5 {
		t.Errorf("%d tasks, want the 5 created", n)
	}
	if n := h.notificationCount(t, entra.AliceOID); n != 0 {
		t.Errorf("%d notifications recorded, want none", n)
	}
}

// TestConsentRequiredAsPackage: a tenant without admin consent for the
// Notification Service gets consent_required with the scopes and a
// challenge for MSAL; the task is created and audited.
func TestConsentRequiredAsPackage(t *testing.T) {
	dir := entra.DefaultDirectory()
	second := dir.Tenant(entra.SecondTenantID)
	var kept []*entra.ConsentGrant
	for _, g := range second.ConsentGrants {
		if !(g.ClientAppID == entra.TaskAPIClientID && g.ResourceAppID == entra.NotificationClientID) {
			kept = append(kept, g)
		}
	}
	second.ConsentGrants = kept
	h := newHarnessIn(t, dir, nil)
	erin := userTokenIn(t, h.srv, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	r := h.do(t, "POST", "/api/tasks", erin, `{"title":"before consent"}`)
	f, _ := r.body["notification_failure"].(map[string]any)
	if r.status != http.StatusCreated || r.body["notification_status"] != NotificationFailed || r.body["audit_status"] != AuditLogged ||
		f["reason"] != ReasonConsentRequired {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	challenge := str(f["challenge"])
	if !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `error="consent_required"`) ||
		!strings.Contains(challenge, "/"+entra.SecondTenantID+"/oauth2/v2.0/authorize") {
		t.Errorf("challenge %q", challenge)
	}
	if scopes, _ := f["scopes"].([]any); len(scopes) != 1 || scopes[0] != entra.NotificationClientID+"/.default" {
		t.Errorf("scopes %v", f["scopes"])
	}
}

// TestAuditFailuresQueue: when the Audit Service fails or refuses, the
// write succeeds with audit_status queued and the event stays in the
// outbox (pending while a retry can help, dead when refused for good);
// the next sweep delivers what is pending once the service is back.
func TestAuditFailuresQueue(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct {
		name, reason, state string
		fault               int32
	}{
		{"503", ReasonUnavailable, store.OutboxPending, http.StatusServiceUnavailable},
		{"403", ReasonRejected, store.OutboxPending, http.StatusForbidden},
		{"400", ReasonRejected, store.OutboxDead, http.StatusBadRequest},
	} {
		h.auditFault.Store(c.fault)
		r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"audit `+c.name+`"}`)
		f, _ := r.body["audit_failure"].(map[string]any)
		if r.status != http.StatusCreated || r.body["audit_status"] != AuditQueued || f["reason"] != c.reason ||
			r.body["notification_status"] != NotificationSent {
			t.Errorf("audit %s: %d %s", c.name, r.status, r.raw)
		}
		page, err := h.st.ListOutbox(t.Context(), entra.HomeTenantID, c.state, store.MaxPageSize, "")
		if err != nil {
			t.Fatal(err)
		}
		if !hasEventFor(page.Items, str(r.body["id"])) {
			t.Errorf("audit %s: no %s outbox event for task %v: %+v", c.name, c.state, r.body["id"], page.Items)
		}
	}
	h.auditFault.Store(0)
	h.auditSrv.Close()
	id := h.newTask(t, "placeholder")
	r := h.do(t, "PATCH", "/api/tasks/"+id, h.alice, `{"completed":true}`)
	if f, _ := r.body["audit_failure"].(map[string]any); r.status != 200 || r.body["audit_status"] != AuditQueued || f["reason"] != ReasonUnavailable {
		t.Errorf("patch with the audit service down: %d %s", r.status, r.raw)
	}
	r = h.do(t, "DELETE", "/api/tasks/"+id, h.alice, "")
	if f, _ := r.body["audit_failure"].(map[string]any); r.status != 200 || r.body["audit_status"] != AuditQueued || f["reason"] != ReasonUnavailable {
		t.Errorf("delete with the audit service down: %d %s", r.status, r.raw)
	}
	if n := h.auditCount(t); n != 0 {
		t.Errorf("%d audit entries, want none while it failed", n)
	}
}

func hasEventFor(evs []store.OutboxEvent, taskID string) bool {
	for _, ev := range evs {
		if ev.ResourceID == taskID && taskID != "" {
			return true
		}
	}
	return false
}
