package taskapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/store"
)

// oboRequests counts the On-Behalf-Of token requests the emulator got.
func (h *harness) oboRequests() int64 { return h.srv.Stats().Grants[entra.GrantOnBehalfOf] }

// TestNotificationTokenOnlyForValidCreates: a create starts its
// notification's On-Behalf-Of token before its commit, but only once the
// caller is authorized and the request valid: creates refused 400 or 403
// ask Entra ID for nothing; the one valid create asks once.
func TestNotificationTokenOnlyForValidCreates(t *testing.T) {
	h := newHarness(t, nil)
	carol := userToken(t, h.srv, "carol@home.handoff.test") // Reader: may not create
	h.srv.ResetStats()
	for _, c := range []struct {
		name, tok, body string
		headers         []string
		want            int
	}{
		{"bad JSON", h.alice, `not json`, nil, http.StatusBadRequest},
		{"no title", h.alice, `{"description":"x"}`, nil, http.StatusBadRequest},
		{"malformed key", h.alice, `{"title":"t"}`, []string{IdempotencyKeyHeader, "no spaces allowed"}, http.StatusBadRequest},
		{"two keys", h.alice, `{"title":"t"}`, []string{IdempotencyKeyHeader, "a", IdempotencyKeyHeader, "b"}, http.StatusBadRequest},
		{"a Reader", carol, `{"title":"t"}`, nil, http.StatusForbidden},
	} {
		if r := h.do(t, "POST", "/api/tasks", c.tok, c.body, c.headers...); r.status != c.want {
			t.Fatalf("%s: %d %s, want %d", c.name, r.status, r.raw, c.want)
		}
	}
	// A valid create by another user: had a refused one started a token
	// request (alice's or carol's), it would be counted by the time this
	// create, which waits for its own, has its answer.
	if r := h.do(t, "POST", "/api/tasks", h.bob, `{"title":"valid"}`); r.status != http.StatusCreated || r.body["notification_status"] != NotificationSent {
		t.Fatalf("valid create: %d %s", r.status, r.raw)
	}
	if n := h.oboRequests(); n != 1 {
		t.Errorf("%d On-Behalf-Of requests, want 1 (the valid create's)", n)
	}
}

// TestReplayNotifiesNothing: a create repeated with its Idempotency-Key
// (the same token, as a client's retry sends it) is answered from the
// record: no notification, no new token request (the token its first
// create got is cached), and the notification call it started is not
// counted as a call; its span says it was not sent.
func TestReplayNotifiesNothing(t *testing.T) {
	h, exp, reader, _ := tracedHarness(t)
	h.srv.ResetStats()
	key := []string{IdempotencyKeyHeader, "replay-1"}
	first := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"once"}`, key...)
	if first.status != http.StatusCreated || first.body["notification_status"] != NotificationSent {
		t.Fatalf("create: %d %s", first.status, first.raw)
	}
	exp.Reset()
	again := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"once"}`, key...)
	if again.status != http.StatusCreated || again.header.Get(ReplayedHeader) != "true" || string(again.raw) != string(first.raw) {
		t.Fatalf("replay: %d %v %s", again.status, again.header, again.raw)
	}
	if other := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"another"}`, key...); other.status != http.StatusUnprocessableEntity {
		t.Fatalf("the key with another body: %d %s", other.status, other.raw)
	}
	if n := h.notificationCount(t, entra.AliceOID); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
	if n := h.oboRequests(); n != 1 {
		t.Errorf("%d On-Behalf-Of requests, want 1 (the first create's)", n)
	}
	sends := spanNamed(exp.GetSpans(), "notification.send")
	if len(sends) != 2 {
		t.Fatalf("%d notification.send spans after the replays, want 2 (ended, not sent)", len(sends))
	}
	for _, s := range sends {
		if len(s.Events) != 1 || s.Events[0].Name != notSentEvent || attrs(s.Attributes)["handoff.downstream.outcome"] != "" {
			t.Errorf("a replay's notification.send: events %+v, attributes %v", s.Events, attrs(s.Attributes))
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	if got := metrics(rm).sum("handoff.downstream.calls", "handoff.downstream.service=notification"); got != 1 {
		t.Errorf("notification calls counted: %d, want 1 (the replays sent none)", got)
	}
}

// TestCreateWhoseStoreFails: when the task's commit fails, the create
// answers the store's error as before, nothing is notified, and the
// notification call it started ends, not sent.
func TestCreateWhoseStoreFails(t *testing.T) {
	h, exp, _, _ := tracedHarness(t)
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"lost"}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.body["detail"] != "storage is temporarily unavailable; nothing was written" {
		t.Fatalf("create with the store closed: %d %s", r.status, r.raw)
	}
	if seen := h.notifySeen.list(); len(seen) != 0 {
		t.Errorf("the Notification Service got %d requests, want none", len(seen))
	}
	sends := spanNamed(exp.GetSpans(), "notification.send")
	if len(sends) != 1 || len(sends[0].Events) != 1 || sends[0].Events[0].Name != notSentEvent {
		t.Errorf("notification.send spans: %+v", sends)
	}
}

// TestNotificationTokenDeadline: a token request slower than the side
// effects' deadline fails the notification with reason timeout, as before
// the token was started early; the task is created.
func TestNotificationTokenDeadline(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DownstreamTimeout = 300 * time.Millisecond })
	h.srv.SetTokenLatency(time.Hour) // released when the test ends
	t.Cleanup(func() { h.srv.SetTokenLatency(0) })
	r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"slow token"}`)
	f, _ := r.body["notification_failure"].(map[string]any)
	if r.status != http.StatusCreated || r.body["notification_status"] != NotificationFailed || f["reason"] != ReasonTimeout {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if tasks := h.tasks(t); len(tasks) != 1 || tasks[0].Title != "slow token" {
		t.Errorf("tasks: %+v", tasks)
	}
	page, err := h.st.ListOutbox(t.Context(), entra.HomeTenantID, store.OutboxPending, store.MaxPageSize, "")
	if err != nil || len(page.Items) != 1 {
		t.Errorf("the audit event (its token as slow): %+v, %v", page.Items, err)
	}
}

// TestAbandonedTokenRequestEnds: a notification call finished unsent (its
// create failed) stops waiting for its token at once, even when the token
// endpoint hangs: no goroutine is left waiting for the deadline.
func TestAbandonedTokenRequestEnds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DownstreamTimeout = time.Hour })
	h.srv.SetTokenLatency(time.Hour) // released when the test ends
	t.Cleanup(func() { h.srv.SetTokenLatency(0) })
	id, err := h.app.validator.Validate(t.Context(), h.alice)
	if err != nil {
		t.Fatal(err)
	}
	c := h.app.startNotification(t.Context(), id)
	// Wait until its token request reached the emulator (it is hanging there).
	for deadline := time.Now().Add(30 * time.Second); h.oboRequests() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no token request reached the emulator")
		}
	}
	c.finish()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the token's goroutine still waits after finish")
	}
	if !errors.Is(c.err, context.Canceled) {
		t.Errorf("the abandoned token's error: %v, want context.Canceled", c.err)
	}
}
