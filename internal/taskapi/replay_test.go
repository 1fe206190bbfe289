package taskapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/store"
)

// deadLetter writes a task of tenant with its audit event and
// dead-letters the event, as a refusal for good would.
func (h *harness) deadLetter(t *testing.T, tenant string) store.OutboxEvent {
	t.Helper()
	ev := store.OutboxEvent{EventID: newEventID(), Action: "task.created", Actor: entra.AliceOID}
	if _, err := h.st.CreateTask(t.Context(), store.Task{TenantID: tenant, Title: "doomed", CreatedBy: entra.AliceOID, CreatedByName: "A"}, &ev); err != nil {
		t.Fatal(err)
	}
	if err := h.st.MarkFailed(t.Context(), tenant, ev.EventID, "rejected: the service refused the call (400)", h.clock.Now(), true); err != nil {
		t.Fatal(err)
	}
	return ev
}

// outboxOf lists a tenant's events in a state, from the store.
func (h *harness) outboxOf(t *testing.T, tenant, state string) []store.OutboxEvent {
	t.Helper()
	p, err := h.st.ListOutbox(t.Context(), tenant, state, store.MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// isDead reports whether the tenant's event is still a dead letter.
func (h *harness) isDead(t *testing.T, tenant, eventID string) bool {
	t.Helper()
	for _, e := range h.outboxOf(t, tenant, store.OutboxDead) {
		if e.EventID == eventID {
			return true
		}
	}
	return false
}

// auditEntries lists the Audit Service's entries with action.
func (h *harness) auditEntries(t *testing.T, action string) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	for cursor := ""; ; {
		p, err := h.auditStore.ListAudit(t.Context(), "", store.MaxPageSize, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			if e.Action == action {
				out = append(out, e)
			}
		}
		if cursor = p.Next; cursor == "" {
			return out
		}
	}
}

// countFor counts the entries about resource.
func countFor(entries []store.AuditEntry, resource string) int {
	n := 0
	for _, e := range entries {
		if e.ResourceID == resource {
			n++
		}
	}
	return n
}

// TestReplayRBAC: who may replay and list what. Only the operator roles
// replay; Outbox.Replay reaches its own tenant, Outbox.Replay.All any
// tenant through ?tenant=; an event id of another tenant is 404 (looked up
// in the caller's tenant only); naming another tenant without the role is
// 403. Every refusal leaves the dead letter dead.
func TestReplayRBAC(t *testing.T) {
	h := newHarness(t, nil)
	home, second := entra.HomeTenantID, entra.SecondTenantID
	users := []struct {
		name, token, tenant string
	}{
		{"Admin", h.alice, home},
		{"Editor", h.bob, home},
		{"Reader", userToken(t, h.srv, "carol@home.handoff.test"), home},
		{"none", userToken(t, h.srv, "dave@home.handoff.test"), home},
		{"Editor of the second tenant", userTokenIn(t, h.srv, second, "erin@fabrikam.handoff.test"), second},
		{"Outbox.Replay (second tenant)", userTokenIn(t, h.srv, second, "owen@fabrikam.handoff.test"), second},
		{"Outbox.Replay.All (home)", userToken(t, h.srv, "olivia@home.handoff.test"), home},
	}
	// want is the status per user, in the order above. own and other are
	// the caller's tenant and the other one; {id} is a dead letter of the
	// tenant the case names.
	cases := []struct {
		name, method, path, eventTenant string
		want                            [7]int
	}{
		{"replay own", "POST", "/api/outbox/{id}/replay", "own", [7]int{403, 403, 403, 403, 403, 200, 200}},
		{"replay another tenant's id", "POST", "/api/outbox/{id}/replay", "other", [7]int{403, 403, 403, 403, 403, 404, 404}},
		{"replay another tenant's, named", "POST", "/api/outbox/{id}/replay?tenant={other}", "other", [7]int{403, 403, 403, 403, 403, 403, 200}},
		{"replay own, named", "POST", "/api/outbox/{id}/replay?tenant={own}", "own", [7]int{403, 403, 403, 403, 403, 200, 200}},
		{"replay all own", "POST", "/api/outbox/replay", "own", [7]int{403, 403, 403, 403, 403, 200, 200}},
		{"replay all of another tenant", "POST", "/api/outbox/replay?tenant={other}", "other", [7]int{403, 403, 403, 403, 403, 403, 200}},
		{"list own", "GET", "/api/outbox", "own", [7]int{200, 403, 403, 403, 403, 200, 200}},
		{"list another tenant's", "GET", "/api/outbox?tenant={other}", "other", [7]int{403, 403, 403, 403, 403, 403, 200}},
	}
	for _, c := range cases {
		for i, u := range users {
			other := home
			if u.tenant == home {
				other = second
			}
			evTenant := map[string]string{"own": u.tenant, "other": other}[c.eventTenant]
			dead := h.deadLetter(t, evTenant)
			path := strings.NewReplacer("{id}", dead.EventID, "{own}", u.tenant, "{other}", other).Replace(c.path)
			r := h.do(t, c.method, path, u.token, "")
			if r.status != c.want[i] {
				t.Errorf("%s as %s: %d %s, want %d", c.name, u.name, r.status, r.raw, c.want[i])
				continue
			}
			stillDead := h.isDead(t, evTenant, dead.EventID)
			switch {
			case c.method == "GET" && r.status == 200:
				if items, _ := r.body["items"].([]any); len(items) == 0 || !stillDead {
					t.Errorf("%s as %s: %s; the dead letter listed and kept", c.name, u.name, r.raw)
				}
			case r.status == 200:
				if stillDead {
					t.Errorf("%s as %s: 200 %s, but the event is still dead", c.name, u.name, r.raw)
				}
			case !stillDead:
				t.Errorf("%s as %s: refused %d, but the event was replayed", c.name, u.name, r.status)
			}
			if r.status == 403 && r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s as %s: 403 without a problem: %v", c.name, u.name, r.header)
			}
		}
		// Leave no dead letter for the next case's "replay all" to find.
		for _, tenant := range []string{home, second} {
			for _, e := range h.outboxOf(t, tenant, store.OutboxDead) {
				_ = h.st.MarkDelivered(t.Context(), tenant, e.EventID)
			}
		}
	}
}

// TestReplayDeliversOnceAndIsAudited: an event the Audit Service refused
// for good (400) is dead; once the service accepts again, the operator's
// replay delivers it at once: one task.created entry, and one
// outbox.replay entry naming the event and the operator. Replaying again
// finds nothing (404), and a sweep delivers nothing more.
func TestReplayDeliversOnceAndIsAudited(t *testing.T) {
	h := newHarness(t, nil)
	olivia := userToken(t, h.srv, "olivia@home.handoff.test")
	h.auditFault.Store(http.StatusBadRequest)
	taskID := h.newTask(t, "refused audit")
	h.auditFault.Store(0)
	dead := h.outboxOf(t, entra.HomeTenantID, store.OutboxDead)
	if len(dead) != 1 || dead[0].ResourceID != taskID {
		t.Fatalf("dead letters: %+v", dead)
	}
	r := h.do(t, "POST", "/api/outbox/"+dead[0].EventID+"/replay", olivia, "")
	if r.status != 200 || r.body["replayed"] != true || r.body["state"] != delivered || r.body["audit_status"] != AuditLogged ||
		r.body["event_id"] != dead[0].EventID || r.body["tenant_id"] != entra.HomeTenantID || r.body["action"] != "task.created" {
		t.Fatalf("replay: %d %s", r.status, r.raw)
	}
	created, replays := h.auditEntries(t, "task.created"), h.auditEntries(t, store.ActionOutboxReplay)
	if countFor(created, taskID) != 1 {
		t.Errorf("task.created entries for the task: %d, want 1", countFor(created, taskID))
	}
	if len(replays) != 1 || replays[0].ResourceID != dead[0].EventID || replays[0].Actor != entra.OliviaOID ||
		replays[0].TenantID != entra.HomeTenantID || replays[0].CallerApp != entra.TaskAPIClientID {
		t.Errorf("outbox.replay entries: %+v", replays)
	}
	if r := h.do(t, "POST", "/api/outbox/"+dead[0].EventID+"/replay", olivia, ""); r.status != 404 {
		t.Errorf("replaying a delivered event: %d %s, want 404", r.status, r.raw)
	}
	h.clock.Advance(time.Hour)
	if res, err := h.app.Sweep(t.Context()); err != nil || res.Delivered != 0 {
		t.Errorf("a sweep after the replay: %+v, %v; want nothing to deliver", res, err)
	}
	if n := len(h.auditEntries(t, "task.created")) + len(h.auditEntries(t, store.ActionOutboxReplay)); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// TestReplayConcurrentIsOnce: eight replays of one dead letter at once:
// exactly one moves it; each answer is 200 (replayed, or found pending) or
// 404 (already delivered); the Audit Service has one entry for the event
// and one for the replay.
func TestReplayConcurrentIsOnce(t *testing.T) {
	h := newHarness(t, nil)
	olivia := userToken(t, h.srv, "olivia@home.handoff.test")
	dead := h.deadLetter(t, entra.HomeTenantID)
	var mu sync.Mutex
	var wg sync.WaitGroup
	replayed, statuses := 0, map[int]int{}
	for range 8 {
		wg.Go(func() {
			r := h.do(t, "POST", "/api/outbox/"+dead.EventID+"/replay", olivia, "")
			mu.Lock()
			defer mu.Unlock()
			statuses[r.status]++
			if r.body["replayed"] == true {
				replayed++
			}
		})
	}
	wg.Wait()
	if replayed != 1 || statuses[200]+statuses[404] != 8 {
		t.Errorf("8 concurrent replays: %d moved the event, statuses %v", replayed, statuses)
	}
	if n := countFor(h.auditEntries(t, "task.created"), dead.ResourceID); n != 1 {
		t.Errorf("%d task.created entries for the event's task, want 1", n)
	}
	if n := len(h.auditEntries(t, store.ActionOutboxReplay)); n != 1 {
		t.Errorf("%d outbox.replay entries, want 1", n)
	}
}

// TestReplayWithTheAuditServiceDown: the replay moves the event and
// records itself in the outbox; both wait there (pending) and the next
// sweep delivers both once.
func TestReplayWithTheAuditServiceDown(t *testing.T) {
	h := newHarness(t, nil)
	olivia := userToken(t, h.srv, "olivia@home.handoff.test")
	dead := h.deadLetter(t, entra.HomeTenantID)
	h.auditFault.Store(http.StatusServiceUnavailable)
	r := h.do(t, "POST", "/api/outbox/"+dead.EventID+"/replay", olivia, "")
	df, _ := r.body["delivery_failure"].(map[string]any)
	if r.status != 200 || r.body["replayed"] != true || r.body["state"] != store.OutboxPending || df["reason"] != ReasonUnavailable ||
		r.body["audit_status"] != AuditQueued {
		t.Fatalf("replay with the Audit Service down: %d %s", r.status, r.raw)
	}
	pending := h.outboxOf(t, entra.HomeTenantID, store.OutboxPending)
	if len(pending) != 2 {
		t.Fatalf("pending: %+v, want the event and the replay's audit record", pending)
	}
	for _, e := range pending {
		if e.Action == store.ActionOutboxReplay && (e.ResourceID != dead.EventID || e.Actor != entra.OliviaOID) {
			t.Errorf("the replay's audit record: %+v", e)
		}
	}
	h.auditFault.Store(0)
	h.clock.Advance(time.Hour)
	if res, err := h.app.Sweep(t.Context()); err != nil || res.Delivered != 2 {
		t.Fatalf("sweep: %+v, %v; want both delivered", res, err)
	}
	if n := countFor(h.auditEntries(t, "task.created"), dead.ResourceID); n != 1 {
		t.Errorf("%d task.created entries, want 1", n)
	}
	if e := h.auditEntries(t, store.ActionOutboxReplay); len(e) != 1 || e[0].ResourceID != dead.EventID {
		t.Errorf("outbox.replay entries: %+v", e)
	}
}

// TestReplayOfAReplayAuditDoesNotLoop: with the Audit Service refusing for
// good, a replay dies again, and so does its audit record. Replaying that
// record moves it without a further audit record; a tenant-wide replay
// adds one record per task event it replays, none per replay record, so
// the dead letters grow with the operator's replays, never by themselves.
func TestReplayOfAReplayAuditDoesNotLoop(t *testing.T) {
	h := newHarness(t, nil)
	olivia := userToken(t, h.srv, "olivia@home.handoff.test")
	dead := h.deadLetter(t, entra.HomeTenantID)
	h.auditFault.Store(http.StatusBadRequest)
	if r := h.do(t, "POST", "/api/outbox/"+dead.EventID+"/replay", olivia, ""); r.status != 200 || r.body["state"] != store.OutboxDead ||
		r.body["audit_status"] != AuditQueued {
		t.Fatalf("replay refused for good again: %d %s", r.status, r.raw)
	}
	var record string
	for _, e := range h.outboxOf(t, entra.HomeTenantID, store.OutboxDead) {
		if e.Action == store.ActionOutboxReplay {
			record = e.EventID
		}
	}
	if record == "" || len(h.outboxOf(t, entra.HomeTenantID, store.OutboxDead)) != 2 {
		t.Fatalf("dead letters after the refused replay: %+v, want the event and the replay's record", h.outboxOf(t, entra.HomeTenantID, store.OutboxDead))
	}
	for round := range 3 {
		r := h.do(t, "POST", "/api/outbox/"+record+"/replay", olivia, "")
		if _, audited := r.body["audit_status"]; r.status != 200 || r.body["replayed"] != true || r.body["state"] != store.OutboxDead || audited {
			t.Fatalf("replaying the replay's record, round %d: %d %s", round, r.status, r.raw)
		}
		if n := len(h.outboxOf(t, entra.HomeTenantID, store.OutboxDead)); n != 2 {
			t.Fatalf("round %d: %d dead letters, want still 2", round, n)
		}
	}
	for round := range 3 {
		before := len(h.outboxOf(t, entra.HomeTenantID, store.OutboxDead))
		r := h.do(t, "POST", "/api/outbox/replay", olivia, "")
		if r.status != 200 || r.body["replayed"] != float64(before) || r.body["dead"] != float64(before) {
			t.Fatalf("replay all, round %d: %d %s", round, r.status, r.raw)
		}
		if n := len(h.outboxOf(t, entra.HomeTenantID, store.OutboxDead)); n != before+1 {
			t.Fatalf("replay all, round %d: %d dead letters, want %d (one record for the one task event)", round, n, before+1)
		}
	}
}

// TestReplayAllLimit: one call moves at most MaxReplayBatch dead letters
// and says more are left; the next call moves the rest; then nothing.
func TestReplayAllLimit(t *testing.T) {
	h := newHarness(t, nil)
	owen := userTokenIn(t, h.srv, entra.SecondTenantID, "owen@fabrikam.handoff.test")
	for range MaxReplayBatch + 1 {
		h.deadLetter(t, entra.SecondTenantID)
	}
	other := h.deadLetter(t, entra.HomeTenantID)
	h.auditFault.Store(http.StatusServiceUnavailable) // fast and certain: every delivery fails, nothing dies
	for _, want := range []struct {
		replayed int
		more     bool
	}{{MaxReplayBatch, true}, {1, false}, {0, false}} {
		r := h.do(t, "POST", "/api/outbox/replay", owen, "")
		ids, _ := r.body["event_ids"].([]any)
		if r.status != 200 || r.body["replayed"] != float64(want.replayed) || r.body["pending"] != float64(want.replayed) ||
			r.body["more"] != want.more || len(ids) != want.replayed || r.body["tenant_id"] != entra.SecondTenantID {
			t.Fatalf("replay all, want %d moved and more %v: %d %.300s", want.replayed, want.more, r.status, r.raw)
		}
	}
	if n := len(h.outboxOf(t, entra.SecondTenantID, store.OutboxDead)); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if !h.isDead(t, entra.HomeTenantID, other.EventID) {
		t.Error("a tenant-scoped operator's replay moved another tenant's dead letter")
	}
}

// TestReplayRefusals: what an attacker or a typo sends: a malformed id,
// an unknown one, a body (small or huge), a bad tenant, a token without
// roles. None moves anything.
func TestReplayRefusals(t *testing.T) {
	h := newHarness(t, nil)
	olivia := userToken(t, h.srv, "olivia@home.handoff.test")
	dead := h.deadLetter(t, entra.HomeTenantID)
	one := "/api/outbox/" + dead.EventID + "/replay"
	for _, c := range []struct {
		name, path, token, body string
		want                    int
	}{
		{"not a GUID", "/api/outbox/abc/replay", olivia, "", 400},
		{"a path in the id", "/api/outbox/..%2F" + dead.EventID + "/replay", olivia, "", 404},
		{"an uppercase GUID", "/api/outbox/" + strings.ToUpper(dead.EventID) + "/replay", olivia, "", 400},
		{"unknown", "/api/outbox/" + newEventID() + "/replay", olivia, "", 404},
		{"a body", one, olivia, `{}`, 400},
		{"a body over 64 KiB", one, olivia, `{"x":"` + strings.Repeat("x", 1<<20) + `"}`, 413},
		{"a body over 64 KiB, replay all", "/api/outbox/replay", olivia, strings.Repeat("x", 1<<20), 413},
		{"a tenant that is no GUID", one + "?tenant=x'%20or%20'1", olivia, "", 400},
		{"two tenants", one + "?tenant=" + entra.HomeTenantID + "&tenant=" + entra.SecondTenantID, olivia, "", 400},
		{"a token without roles", one, h.forged(t, map[string]any{"roles": nil}), "", 403},
		{"a token with a role of another app", one, h.forged(t, map[string]any{"roles": []string{"AuditLog.Write"}}), "", 403},
	} {
		r := h.do(t, "POST", c.path, c.token, c.body)
		if r.status != c.want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v %.200s, want %d problem+json", c.name, r.status, r.header, r.raw, c.want)
		}
	}
	// A body sent without a length (chunked) is seen too.
	req := httptest.NewRequest("POST", one, io.NopCloser(strings.NewReader("{}")))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+olivia)
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Errorf("a chunked body: %d %s, want 400", rec.Code, rec.Body)
	}
	if !h.isDead(t, entra.HomeTenantID, dead.EventID) {
		t.Error("a refused replay moved the dead letter")
	}
	// The role alone is enough: alice's token with Outbox.Replay instead of
	// Admin, as Entra would issue it had she that role only.
	if r := h.do(t, "POST", one, h.forged(t, map[string]any{"roles": []string{RoleOutboxReplay}}), ""); r.status != 200 {
		t.Errorf("a token with Outbox.Replay: %d %s", r.status, r.raw)
	}
}
