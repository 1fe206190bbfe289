package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/appmain"
)

// TestTokenJourney follows the journey of docs/architecture.md through the real binaries:
// token A at the Task API, token B (OBO) at the Notification Service,
// token C (client credentials) at the Audit Service, each checked by what
// the service that validated it recorded.
func TestTokenJourney(t *testing.T) {
	s := stack(t, nil)
	a := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	ca := claims(t, a)
	if ca["aud"] != entra.TaskAPIClientID || ca["scp"] != entra.ScopeAccessAsUser || ca["oid"] != entra.AliceOID || ca["tid"] != entra.HomeTenantID {
		t.Fatalf("token A claims %v", ca)
	}

	me := call(t, "GET", s.URL("task")+"/api/me", a, nil)
	if me.status != 200 || me.body["oid"] != entra.AliceOID || me.body["name"] != "Alice Admin" || me.body["tid"] != entra.HomeTenantID {
		t.Fatalf("/api/me: %d %s", me.status, me.raw)
	}

	created := call(t, "POST", s.URL("task")+"/api/tasks", a, map[string]string{"title": "Write the journey test", "description": "A, B and C"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	taskID := str(created.body["id"])
	if created.body["notification_status"] != "sent" || created.body["audit_status"] != "logged" || created.header.Get("ETag") == "" || len(taskID) < 32 {
		t.Fatalf("create response: %s (ETag %q)", created.raw, created.header.Get("ETag"))
	}

	// Hop B: the Notification Service recorded the user from token B.
	taskAPI := asApp(t, s, entra.TaskAPIClientID, entra.TaskAPISecret)
	b, err := taskAPI.AcquireTokenOnBehalfOf(context.Background(), a, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	notes := call(t, "GET", s.URL("notification")+"/api/notifications", b.AccessToken, nil)
	if notes.status != 200 || len(items(notes)) != 1 {
		t.Fatalf("notifications: %d %s", notes.status, notes.raw)
	}
	n := items(notes)[0]
	for k, want := range map[string]string{"event": "task_created", "task_title": "Write the journey test", "to": "Alice Admin",
		"email": "alice@home.handoff.test", "user_oid": entra.AliceOID, "tenant_id": entra.HomeTenantID, "caller_app": entra.TaskAPIClientID} {
		if n[k] != want {
			t.Errorf("notification %s = %v, want %s", k, n[k], want)
		}
	}

	// Hop C: the Audit Service recorded the Task API as the caller, from token C.
	op := asApp(t, s, entra.OperatorClientID, entra.OperatorSecret)
	read, err := op.AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	audit := call(t, "GET", s.URL("audit")+"/api/audit", read.AccessToken, nil)
	if audit.status != 200 || len(items(audit)) != 1 {
		t.Fatalf("audit: %d %s", audit.status, audit.raw)
	}
	e := items(audit)[0]
	for k, want := range map[string]string{"action": "task.created", "resource_id": taskID, "actor": entra.AliceOID,
		"tenant_id": entra.HomeTenantID, "caller_app": entra.TaskAPIClientID} {
		if e[k] != want {
			t.Errorf("audit entry %s = %v, want %s", k, e[k], want)
		}
	}

	// Each service validates against its own audience: tokens for another
	// service, or of the wrong kind, are refused.
	c, err := taskAPI.AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, method, token string
		body                     any
		status                   int
	}{
		{"token A at Notification", s.URL("notification") + "/api/notify", "POST", a, map[string]string{"event": "x", "task_title": "x"}, 401},
		{"token C at Notification", s.URL("notification") + "/api/notify", "POST", c.AccessToken, map[string]string{"event": "x", "task_title": "x"}, 401},
		{"token A at Audit", s.URL("audit") + "/api/audit", "POST", a, map[string]string{"event_id": "e", "action": "x", "resource_id": "r", "actor": "a", "tenant_id": "t"}, 401},
		{"token B at Audit", s.URL("audit") + "/api/audit", "POST", b.AccessToken, map[string]string{"event_id": "e", "action": "x", "resource_id": "r", "actor": "a", "tenant_id": "t"}, 401},
		{"token B at the Task API", s.URL("task") + "/api/tasks", "GET", b.AccessToken, nil, 401},
		{"token C at the Task API", s.URL("task") + "/api/tasks", "GET", c.AccessToken, nil, 401},
		{"no token", s.URL("task") + "/api/tasks", "GET", "", nil, 401},
	} {
		if r := call(t, tc.method, tc.url, tc.token, tc.body); r.status != tc.status {
			t.Errorf("%s: %d, want %d (%s)", tc.name, r.status, tc.status, r.raw)
		}
	}
	// A delegated token that carries AuditLog.Write as a role (signed by the
	// authority, so only the kind check can refuse it) is refused at Audit.
	forged := claims(t, b.AccessToken)
	forged["aud"], forged["roles"] = entra.AuditClientID, []string{"AuditLog.Write"}
	tok, _ := s.Entra.SignToken(forged)
	if r := call(t, "POST", s.URL("audit")+"/api/audit", tok, map[string]string{"event_id": "e", "action": "x", "resource_id": "r", "actor": "a", "tenant_id": "t"}); r.status != 403 {
		t.Errorf("delegated token with roles at Audit: %d %s", r.status, r.raw)
	}
}

// TestRBACMatrix: alice (Admin), bob (Editor), carol (Reader) and dave (no
// role) against every endpoint.
func TestRBACMatrix(t *testing.T) {
	s := stack(t, nil)
	tokens := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		tokens[u] = signIn(t, s, entra.HomeTenantID, u+"@home.handoff.test")
	}
	seed := call(t, "POST", s.URL("task")+"/api/tasks", tokens["alice"], map[string]string{"title": "seed"})
	if seed.status != 201 {
		t.Fatalf("seed: %d %s", seed.status, seed.raw)
	}
	base := s.URL("task") + "/api/tasks"
	type want map[string]int
	for _, ep := range []struct {
		name   string
		method string
		url    func() string
		body   any
		want   want
	}{
		{"list", "GET", func() string { return base }, nil, want{"alice": 200, "bob": 200, "carol": 200, "dave": 403}},
		{"get", "GET", func() string { return base + "/" + str(seed.body["id"]) }, nil, want{"alice": 200, "bob": 200, "carol": 200, "dave": 403}},
		{"create", "POST", func() string { return base }, map[string]string{"title": "t"}, want{"alice": 201, "bob": 201, "carol": 403, "dave": 403}},
		{"update", "PATCH", func() string { return base + "/" + str(seed.body["id"]) }, map[string]bool{"completed": true}, want{"alice": 200, "bob": 200, "carol": 403, "dave": 403}},
		{"me", "GET", func() string { return s.URL("task") + "/api/me" }, nil, want{"alice": 200, "bob": 200, "carol": 200, "dave": 200}},
	} {
		for _, u := range []string{"alice", "bob", "carol", "dave"} {
			if r := call(t, ep.method, ep.url(), tokens[u], ep.body); r.status != ep.want[u] {
				t.Errorf("%s as %s: %d, want %d (%s)", ep.name, u, r.status, ep.want[u], r.raw)
			} else if r.status == 403 && !strings.Contains(r.header.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("%s as %s: 403 without insufficient_scope", ep.name, u)
			}
		}
	}
	// Delete: only Admin; each deletes a task of its own.
	for u, status := range map[string]int{"bob": 403, "carol": 403, "dave": 403, "alice": 200} {
		victim := call(t, "POST", base, tokens["alice"], map[string]string{"title": "victim"})
		if r := call(t, "DELETE", base+"/"+str(victim.body["id"]), tokens[u], nil); r.status != status {
			t.Errorf("delete as %s: %d, want %d", u, r.status, status)
		}
	}
}

// TestTenants: erin (second tenant) works and never sees the home tenant's
// tasks; frank's tenant is on no allow-list and is refused.
func TestTenants(t *testing.T) {
	s := stack(t, nil)
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	erin := signIn(t, s, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	frank := signIn(t, s, entra.ThirdTenantID, "frank@northwind.handoff.test")
	home := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "home secret"})
	mine := call(t, "POST", s.URL("task")+"/api/tasks", erin, map[string]string{"title": "fabrikam task"})
	if mine.status != 201 || mine.body["notification_status"] != "sent" || mine.body["audit_status"] != "logged" || mine.body["tenant_id"] != entra.SecondTenantID {
		t.Fatalf("erin's create: %d %s", mine.status, mine.raw)
	}
	list := call(t, "GET", s.URL("task")+"/api/tasks", erin, nil)
	if len(items(list)) != 1 || items(list)[0]["title"] != "fabrikam task" {
		t.Errorf("erin's list: %s", list.raw)
	}
	// Another tenant's task is not found, never forbidden. (DELETE needs
	// Admin, which erin is not: her 403 there is about her role, not the task.)
	for _, method := range []string{"GET", "PATCH"} {
		var body any
		if method == "PATCH" {
			body = map[string]bool{"completed": true}
		}
		if r := call(t, method, s.URL("task")+"/api/tasks/"+str(home.body["id"]), erin, body); r.status != 404 {
			t.Errorf("erin %s on a home task: %d, want 404", method, r.status)
		}
	}
	if r := call(t, "GET", s.URL("task")+"/api/tasks/"+str(home.body["id"]), alice, nil); r.status != 200 || r.body["completed"] == true {
		t.Errorf("the home task after erin's attempts: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", s.URL("task")+"/api/tasks/"+str(mine.body["id"]), alice, nil); r.status != 404 {
		t.Errorf("alice reading erin's task: %d, want 404", r.status)
	}
	if r := call(t, "GET", s.URL("task")+"/api/tasks", frank, nil); r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("frank: %d %v", r.status, r.header)
	}
}

// TestValidation: bad input gets a clear 400 and writes nothing; ETags guard updates.
func TestValidation(t *testing.T) {
	s := stack(t, nil)
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	base := s.URL("task") + "/api/tasks"
	for name, body := range map[string]any{
		"empty title":      map[string]string{"title": ""},
		"blank title":      map[string]string{"title": "   "},
		"201 characters":   map[string]string{"title": strings.Repeat("é", 201)},
		"long description": map[string]string{"title": "t", "description": strings.Repeat("d", 2001)},
		"unknown field":    map[string]any{"title": "t", "owner": "mallory"},
		"malformed JSON":   `{"title": "t"`,
		"two objects":      `{"title": "a"} {"title": "b"}`,
		"wrong type":       map[string]any{"title": 42},
		"empty body":       "",
	} {
		r := call(t, "POST", base, alice, body)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" || str(r.body["detail"]) == "" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if r := call(t, "POST", base, alice, map[string]string{"title": strings.Repeat("é", 200)}); r.status != 201 {
		t.Errorf("200 characters: %d", r.status)
	}
	if list := call(t, "GET", base, alice, nil); len(items(list)) != 1 {
		t.Errorf("refused requests wrote tasks: %s", list.raw)
	}
	if r := call(t, "POST", base, alice, map[string]string{"title": strings.Repeat("x", 70<<10)}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", r.status)
	}

	created := call(t, "POST", base, alice, map[string]string{"title": "etag"})
	url, etag := base+"/"+str(created.body["id"]), created.header.Get("ETag")
	upd := call(t, "PATCH", url, alice, map[string]bool{"completed": true}, "If-Match", etag)
	if upd.status != 200 || upd.body["completed"] != true || upd.header.Get("ETag") == etag || upd.body["audit_status"] != "logged" {
		t.Fatalf("update with the current ETag: %d %s", upd.status, upd.raw)
	}
	if r := call(t, "PATCH", url, alice, map[string]string{"title": "stale"}, "If-Match", etag); r.status != 412 {
		t.Errorf("update with a stale ETag: %d", r.status)
	}
	if r := call(t, "DELETE", url, alice, nil, "If-Match", etag); r.status != 412 {
		t.Errorf("delete with a stale ETag: %d", r.status)
	}
	if r := call(t, "DELETE", url, alice, nil, "If-Match", upd.header.Get("ETag")); r.status != 200 || r.body["audit_status"] != "logged" {
		t.Errorf("delete with the current ETag: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", url, alice, nil); r.status != 404 {
		t.Errorf("deleted task: %d", r.status)
	}
}

// TestDownstreamFailures: with a downstream service stopped, or the token
// endpoint failing or slow, tasks are still created and the statuses say
// so, within the deadline.
func TestDownstreamFailures(t *testing.T) {
	deadline := 2 * time.Second
	// WARM_UP=off: the token endpoint fails "before any token was cached".
	s := stack(t, map[string]map[string]string{"task": {"DOWNSTREAM_TIMEOUT": deadline.String(), appmain.EnvWarmUp: "off"}})
	base := s.URL("task") + "/api/tasks"
	create := func(token, title string) (response, time.Duration) {
		t.Helper()
		start := time.Now()
		r := call(t, "POST", base, token, map[string]string{"title": title})
		if r.status != 201 {
			t.Fatalf("create %q: %d %s", title, r.status, r.raw)
		}
		return r, time.Since(start)
	}
	reason := func(r response, field string) string {
		f, _ := r.body[field].(map[string]any)
		return str(f["reason"])
	}
	// Well above the deadline, to bound the response without timing the work.
	bound := deadline + 3*time.Second

	t.Run("token endpoint failing", func(t *testing.T) {
		bob := signIn(t, s, entra.HomeTenantID, "bob@home.handoff.test")
		// From here on every token request fails, before any token was cached.
		s.Entra.FailTokenRequests(1000, "")
		defer s.Entra.FailTokenRequests(0, "")
		r, took := create(bob, "while Entra fails")
		if r.body["notification_status"] != "failed" || r.body["audit_status"] != "queued" ||
			reason(r, "notification_failure") != "unavailable" || reason(r, "audit_failure") != "unavailable" || took > bound {
			t.Errorf("in %s: %s", took, r.raw)
		}
	})
	t.Run("token endpoint slower than the deadline", func(t *testing.T) {
		bob := signIn(t, s, entra.HomeTenantID, "bob@home.handoff.test") // a new token: no cached OBO result
		s.Entra.SetTokenLatency(10 * time.Second)
		defer s.Entra.SetTokenLatency(0)
		r, took := create(bob, "while Entra is slow")
		if r.body["notification_status"] != "failed" || r.body["audit_status"] != "queued" ||
			reason(r, "notification_failure") != "timeout" || reason(r, "audit_failure") != "timeout" || took > bound {
			t.Errorf("in %s: %s", took, r.raw)
		}
	})
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	t.Run("notification service stopped", func(t *testing.T) {
		if err := s.StopApp("notification"); err != nil {
			t.Fatal(err)
		}
		r, took := create(alice, "notification down")
		if r.body["notification_status"] != "failed" || r.body["audit_status"] != "logged" || reason(r, "notification_failure") != "unavailable" || took > bound {
			t.Errorf("in %s: %s", took, r.raw)
		}
		if err := s.StartApp(context.Background(), "notification"); err != nil {
			t.Fatal(err)
		}
		if r, _ := create(alice, "notification back"); r.body["notification_status"] != "sent" {
			t.Errorf("after restart: %s", r.raw)
		}
	})
	t.Run("audit service stopped", func(t *testing.T) {
		if err := s.StopApp("audit"); err != nil {
			t.Fatal(err)
		}
		r, took := create(alice, "audit down")
		if r.body["notification_status"] != "sent" || r.body["audit_status"] != "queued" || reason(r, "audit_failure") != "unavailable" || took > bound {
			t.Errorf("in %s: %s", took, r.raw)
		}
		if err := s.StartApp(context.Background(), "audit"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConsentRequired: in a tenant onboarded without admin consent for the
// Notification Service, the task is still created, and the failure tells a
// SPA what to do: consent_required, the scopes, and a challenge for MSAL.
func TestConsentRequired(t *testing.T) {
	dir := entra.DefaultDirectory()
	second := dir.Tenant(entra.SecondTenantID)
	var kept []*entra.ConsentGrant
	for _, g := range second.ConsentGrants {
		if !(g.ClientAppID == entra.TaskAPIClientID && g.ResourceAppID == entra.NotificationClientID) {
			kept = append(kept, g)
		}
	}
	second.ConsentGrants = kept
	s := stackWith(t, dir)
	erin := signIn(t, s, entra.SecondTenantID, "erin@fabrikam.handoff.test")
	r := call(t, "POST", s.URL("task")+"/api/tasks", erin, map[string]string{"title": "before consent"})
	f, _ := r.body["notification_failure"].(map[string]any)
	if r.status != 201 || r.body["notification_status"] != "failed" || r.body["audit_status"] != "logged" || f["reason"] != "consent_required" {
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
