package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestDeadLetterReplay: with real processes, an event dead-lettered while
// the Audit Service was down (AUDIT_MAX_ATTEMPTS attempts) is replayed by
// an operator once the service is back: it is delivered once (one
// task.created entry, however often the replay and the sweep run), the
// replay is itself audited, and Admins and Editors without the operator
// role get 403.
func TestDeadLetterReplay(t *testing.T) {
	s := outboxStack(t, map[string]string{})
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	bob := signIn(t, s, entra.HomeTenantID, "bob@home.handoff.test")
	olivia := signIn(t, s, entra.HomeTenantID, "olivia@home.handoff.test")
	owen := signIn(t, s, entra.SecondTenantID, "owen@fabrikam.handoff.test")
	if err := s.StopApp("audit"); err != nil {
		t.Fatal(err)
	}
	created := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "replayed audit"})
	if created.status != 201 || created.body["audit_status"] != "queued" {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	var dead []map[string]any
	for deadline := time.Now().Add(20 * time.Second); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
			t.Fatal(err)
		}
		dead = items(call(t, "GET", s.URL("task")+"/api/outbox", olivia, nil))
	}
	if len(dead) != 1 || dead[0]["resource_id"] != created.body["id"] {
		t.Fatalf("dead letters: %v", dead)
	}
	eventID := str(dead[0]["event_id"])
	replay := s.URL("task") + "/api/outbox/" + eventID + "/replay"
	if err := s.StartApp(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, token string }{{"an Admin", alice}, {"an Editor", bob}} {
		if r := call(t, "POST", replay, u.token, nil); r.status != http.StatusForbidden {
			t.Errorf("replay by %s: %d %s, want 403", u.name, r.status, r.raw)
		}
	}
	// Another tenant's operator does not find it, nor reach the tenant.
	if r := call(t, "POST", replay, owen, nil); r.status != http.StatusNotFound {
		t.Errorf("replay by another tenant's operator: %d %s, want 404", r.status, r.raw)
	}
	if r := call(t, "POST", replay+"?tenant="+entra.HomeTenantID, owen, nil); r.status != http.StatusForbidden {
		t.Errorf("replay by another tenant's operator, naming the tenant: %d %s, want 403", r.status, r.raw)
	}
	if n := len(auditEntries(t, s)); n != 0 {
		t.Fatalf("audited before the replay: %d entries", n)
	}
	r := call(t, "POST", replay, olivia, nil)
	if r.status != 200 || r.body["replayed"] != true || r.body["state"] != "delivered" || r.body["audit_status"] != "logged" {
		t.Fatalf("replay by the operator: %d %s", r.status, r.raw)
	}
	// Again, and a sweep: nothing more is delivered.
	if r := call(t, "POST", replay, olivia, nil); r.status != http.StatusNotFound {
		t.Errorf("a second replay: %d %s, want 404 (delivered: no longer in the outbox)", r.status, r.raw)
	}
	if r := call(t, "POST", s.URL("task")+"/api/outbox/replay", olivia, nil); r.status != 200 || r.body["replayed"] != float64(0) {
		t.Errorf("replay all after: %d %s, want nothing to replay", r.status, r.raw)
	}
	if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
		t.Fatal(err)
	}
	entries := auditEntries(t, s)
	exactlyOnce(t, entries, []string{str(created.body["id"])})
	replays := 0
	for _, e := range entries {
		if e["action"] == "outbox.replay" {
			replays++
			if e["resource_id"] != eventID || e["actor"] != entra.OliviaOID || e["tenant_id"] != entra.HomeTenantID {
				t.Errorf("the replay's audit entry: %v", e)
			}
		}
	}
	if replays != 1 || len(entries) != 2 {
		t.Errorf("%d entries, %d of them outbox.replay; want the task's and the replay's", len(entries), replays)
	}
	if left := items(call(t, "GET", s.URL("task")+"/api/outbox", olivia, nil)); len(left) != 0 {
		t.Errorf("dead letters after the replay: %v", left)
	}
}
