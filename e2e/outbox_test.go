package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/store/azuritetest"
)

// backends are the stores the durable-audit tests run against: SQLite, and
// Azure Table Storage on Azurite for every app.
func backends(t *testing.T) map[string]func(t *testing.T) map[string]string {
	return map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string { return map[string]string{"STORAGE_BACKEND": "sqlite"} },
		"table": func(t *testing.T) map[string]string {
			return map[string]string{"STORAGE_BACKEND": "table", "AzureWebJobsStorage": azuritetest.Start(t)}
		},
	}
}

// outboxStack starts the system with the sweep triggered by the test, short
// retry delays, and the given store settings for the apps named (every app
// when none is).
func outboxStack(t *testing.T, storage map[string]string, apps ...string) *devstack.Stack {
	t.Helper()
	if len(apps) == 0 {
		apps = devstack.Apps()
	}
	env := map[string]map[string]string{"task": {}}
	for _, app := range apps {
		env[app] = map[string]string{}
		for k, v := range storage {
			env[app][k] = v
		}
	}
	env["task"]["AUDIT_RETRY_DELAY"] = "1ms"
	env["task"]["AUDIT_MAX_ATTEMPTS"] = "10"
	env["task"]["DOWNSTREAM_TIMEOUT"] = "2s"
	// These tests make token requests fail or hang before the first create:
	// the Task API must not have fetched its app token at start.
	env["task"][appmain.EnvWarmUp] = "off"
	return start(t, devstack.Options{AppEnv: env, TimersManual: true})
}

// drain runs the timer-triggered sweep until the audit log holds want
// task.created entries (events come due on their own schedule, so it polls).
func drain(t *testing.T, s *devstack.Stack, want int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		logs, err := s.Invoke(context.Background(), "task", "sweep")
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if len(logs) == 0 {
			t.Fatal("the sweep logged nothing")
		}
		if created(auditEntries(t, s)) >= want {
			return
		}
	}
	t.Fatalf("the sweeps did not deliver %d events in 30 s (have %d)", want, created(auditEntries(t, s)))
}

func created(entries []map[string]any) int {
	n := 0
	for _, e := range entries {
		if e["action"] == "task.created" {
			n++
		}
	}
	return n
}

// pendingEvents lists the tenant's undelivered events, as its Admin.
func pendingEvents(t *testing.T, s *devstack.Stack, admin string) []map[string]any {
	t.Helper()
	r := call(t, "GET", s.URL("task")+"/api/outbox?state=pending&limit=100", admin, nil)
	if r.status != 200 {
		t.Fatalf("outbox: %d %s", r.status, r.raw)
	}
	return items(r)
}

// auditEntries reads every audit entry (the operator's AuditLog.Read).
func auditEntries(t *testing.T, s *devstack.Stack) []map[string]any {
	t.Helper()
	op := asApp(t, s, entra.OperatorClientID, entra.OperatorSecret)
	tok, err := op.AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	next := ""
	for {
		r := call(t, "GET", s.URL("audit")+"/api/audit?limit=100&cursor="+next, tok.AccessToken, nil)
		if r.status != 200 {
			t.Fatalf("audit list: %d %s", r.status, r.raw)
		}
		all = append(all, items(r)...)
		if next = str(r.body["next"]); next == "" {
			return all
		}
	}
}

// exactlyOnce checks every task has exactly one task.created entry.
func exactlyOnce(t *testing.T, entries []map[string]any, taskIDs []string) {
	t.Helper()
	count := map[string]int{}
	for _, e := range entries {
		if e["action"] == "task.created" {
			count[str(e["resource_id"])]++
		}
	}
	missing, dup := 0, 0
	for _, id := range taskIDs {
		switch count[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(count) != len(taskIDs) {
		t.Errorf("%d tasks: %d without an audit entry, %d with more than one, %d entries for other resources",
			len(taskIDs), missing, dup, len(count)-len(taskIDs)+missing)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestAuditServiceDown: with the Audit Service down, 20 users create 500
// tasks; every create succeeds with audit_status queued, and after the
// service is back and the sweep runs, every task has exactly one entry.
func TestAuditServiceDown(t *testing.T) {
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := outboxStack(t, storage(t))
			users := []string{
				signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test"),
				signIn(t, s, entra.HomeTenantID, "bob@home.handoff.test"),
				signIn(t, s, entra.SecondTenantID, "erin@fabrikam.handoff.test"),
			}
			if err := s.StopApp("audit"); err != nil {
				t.Fatal(err)
			}
			const writers, perWriter = 20, 25
			var mu sync.Mutex
			var ids []string
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWriter {
						r := call(t, "POST", s.URL("task")+"/api/tasks", users[w%len(users)], map[string]string{"title": fmt.Sprintf("w%d-%d", w, i)})
						if r.status != http.StatusCreated || r.body["audit_status"] != "queued" {
							t.Errorf("create: %d %s", r.status, r.raw)
							return
						}
						mu.Lock()
						ids = append(ids, str(r.body["id"]))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if err := s.StartApp(context.Background(), "audit"); err != nil {
				t.Fatal(err)
			}
			drain(t, s, len(ids))
			exactlyOnce(t, auditEntries(t, s), ids)
			// Later sweeps find nothing owed and change nothing.
			if n := len(pendingEvents(t, s, users[0])); n != 0 {
				t.Errorf("%d events still pending after the drain", n)
			}
			if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, auditEntries(t, s), ids)
		})
	}
}

// TestTaskAPIKilledBeforeDelivery: the Task API is SIGKILLed after the
// task and its event are written and before the event is delivered; after
// a restart the sweep delivers it.
func TestTaskAPIKilledBeforeDelivery(t *testing.T) {
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := outboxStack(t, storage(t))
			alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
			// Token requests hang: the create writes, then waits for its tokens.
			s.Entra.SetTokenLatency(time.Minute)
			go func() {
				// The connection dies with the process; the answer is never read.
				req, _ := http.NewRequest("POST", s.URL("task")+"/api/tasks", strings.NewReader(`{"title":"killed mid-flight"}`))
				req.Header.Set("Authorization", "Bearer "+alice)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			var id string
			for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if r := call(t, "GET", s.URL("task")+"/api/tasks", alice, nil); len(items(r)) == 1 {
					id = str(items(r)[0]["id"])
				}
			}
			if id == "" {
				t.Fatal("the task was never written")
			}
			if err := s.KillApp("task"); err != nil {
				t.Fatal(err)
			}
			s.Entra.SetTokenLatency(0)
			if err := s.StartApp(context.Background(), "task"); err != nil {
				t.Fatal(err)
			}
			// The kill came between the write and the delivery: nothing was
			// audited, and the event waits, never attempted.
			if n := len(auditEntries(t, s)); n != 0 {
				t.Fatalf("audited before the kill: %d entries", n)
			}
			if p := pendingEvents(t, s, alice); len(p) != 1 || p[0]["attempts"] != float64(0) || p[0]["resource_id"] != id {
				t.Fatalf("pending after the kill: %v", p)
			}
			drain(t, s, 1)
			exactlyOnce(t, auditEntries(t, s), []string{id})
		})
	}
}

// TestTokenEndpointFailing: client-credentials requests fail; events queue,
// and drain when the token endpoint recovers.
func TestTokenEndpointFailing(t *testing.T) {
	s := outboxStack(t, map[string]string{})
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	s.Entra.FailTokenRequests(1_000_000, entra.GrantClientCredentials)
	var ids []string
	for i := range 5 {
		r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": fmt.Sprintf("t%d", i)})
		if r.status != 201 || r.body["audit_status"] != "queued" || r.body["notification_status"] != "sent" {
			t.Fatalf("create while CC fails: %d %s", r.status, r.raw)
		}
		ids = append(ids, str(r.body["id"]))
	}
	// Sweeps while it still fails deliver nothing and lose nothing.
	if logs, err := s.Invoke(context.Background(), "task", "sweep"); err != nil || len(logs) == 0 || !contains(logs[0], ": 0 delivered") {
		t.Fatalf("sweep while failing: %v %v", logs, err)
	}
	if p := pendingEvents(t, s, alice); len(p) != len(ids) || p[0]["attempts"].(float64) < 1 {
		t.Fatalf("pending while failing: %v", p)
	}
	s.Entra.FailTokenRequests(0, "")
	drain(t, s, len(ids))
	exactlyOnce(t, auditEntries(t, s), ids)
}

// TestStorageOutage: with the Task API's storage down, a create answers 503
// with a clear problem and nothing is delivered downstream.
func TestStorageOutage(t *testing.T) {
	az := azuritetest.StartInstance(t)
	s := outboxStack(t, map[string]string{"STORAGE_BACKEND": "table", "AzureWebJobsStorage": az.ConnectionString}, "task")
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	if r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "before"}); r.status != 201 || r.body["audit_status"] != "logged" {
		t.Fatalf("create before the outage: %d %s", r.status, r.raw)
	}
	az.Stop()
	r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "during"})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Content-Type") != "application/problem+json" || !contains(str(r.body["detail"]), "nothing was written") {
		t.Errorf("create during the outage: %d %s", r.status, r.raw)
	}
	if n := len(auditEntries(t, s)); n != 1 {
		t.Errorf("audit entries: %d, want 1 (the outage's create must not be audited)", n)
	}
}

// TestDeadLetter: an event that keeps failing moves, after
// AUDIT_MAX_ATTEMPTS attempts (10 here), to the dead-letter state, where an
// Admin of the tenant sees it and sweeps leave it alone.
func TestDeadLetter(t *testing.T) {
	s := outboxStack(t, map[string]string{})
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	bob := signIn(t, s, entra.HomeTenantID, "bob@home.handoff.test")
	if err := s.StopApp("audit"); err != nil {
		t.Fatal(err)
	}
	created := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "doomed audit"})
	if created.status != 201 || created.body["audit_status"] != "queued" {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	pending := call(t, "GET", s.URL("task")+"/api/outbox?state=pending", alice, nil)
	if len(items(pending)) != 1 || items(pending)[0]["attempts"] != float64(1) {
		t.Fatalf("pending after the request's attempt: %s", pending.raw)
	}
	// The request made attempt 1; sweeps make the rest as each comes due
	// (1 ms, doubling: about a second in all).
	var dead response
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
			t.Fatal(err)
		}
		if dead = call(t, "GET", s.URL("task")+"/api/outbox", alice, nil); len(items(dead)) > 0 {
			break
		}
	}
	if dead.status != 200 || len(items(dead)) != 1 {
		t.Fatalf("dead letters: %d %s; pending: %s", dead.status, dead.raw, call(t, "GET", s.URL("task")+"/api/outbox?state=pending", alice, nil).raw)
	}
	e := items(dead)[0]
	if e["state"] != "dead" || e["attempts"] != float64(10) || e["resource_id"] != created.body["id"] || !contains(str(e["last_error"]), "unavailable") {
		t.Errorf("dead letter: %v", e)
	}
	if r := call(t, "GET", s.URL("task")+"/api/outbox", bob, nil); r.status != 403 {
		t.Errorf("an Editor listing dead letters: %d", r.status)
	}
	if err := s.StartApp(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
		t.Fatal(err)
	}
	if n := len(auditEntries(t, s)); n != 0 {
		t.Errorf("a dead letter was delivered by a sweep: %d entries", n)
	}
}
