package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

// telemetryTests hold the backends to what tracing and metrics need of the
// outbox: the trace context written with each event, and its depth.
var telemetryTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Outbox/KeepsTraceContext", testOutboxTraceContext},
	{"Outbox/TraceContextBounds", testOutboxTraceContextBounds},
	{"Outbox/Depth", testOutboxDepth},
}

const (
	testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTracestate  = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

func tracedEvent(action, traceparent string) *store.OutboxEvent {
	ev := newEvent(action)
	ev.Traceparent, ev.Tracestate = traceparent, testTracestate
	return ev
}

// testOutboxTraceContext: every write that carries an event (create, create
// with an idempotency key, update, delete) stores its traceparent and
// tracestate with it, and every read (DueEvents, ListOutbox) returns them,
// also after a failed attempt rewrote the event.
func testOutboxTraceContext(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	want := map[string]string{} // event id → traceparent
	parent := func(i int) string { return testTraceparent[:len(testTraceparent)-5] + string(rune('a'+i)) + "f-01" }
	created := tracedEvent("task.created", parent(0))
	task, err := s.CreateTask(ctx(t), newTask(tenant, "traced"), created)
	if err != nil {
		t.Fatal(err)
	}
	if created.Traceparent != parent(0) || created.Tracestate != testTracestate {
		t.Errorf("the caller's event after create = %+v, lost its trace context", *created)
	}
	once := tracedEvent("task.created", parent(1))
	if _, prior, err := s.CreateTaskOnce(ctx(t), newTask(tenant, "traced once"), once, idem("oid-user", randomID("key"))); err != nil || prior != nil {
		t.Fatalf("CreateTaskOnce: %v %v", prior, err)
	}
	updated := tracedEvent("task.updated", parent(2))
	task, err = s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Completed: ptr(true)}, updated)
	if err != nil {
		t.Fatal(err)
	}
	deleted := tracedEvent("task.deleted", parent(3))
	if err := s.DeleteTask(ctx(t), tenant, task.ID, task.ETag, deleted); err != nil {
		t.Fatal(err)
	}
	untraced := newEvent("task.created")
	if _, err := s.CreateTask(ctx(t), newTask(tenant, "untraced"), untraced); err != nil {
		t.Fatal(err)
	}
	for i, ev := range []*store.OutboxEvent{created, once, updated, deleted} {
		want[ev.EventID] = parent(i)
	}
	want[untraced.EventID] = ""
	check := func(when string, evs []store.OutboxEvent) {
		t.Helper()
		if len(evs) != len(want) {
			t.Fatalf("%s: %d events, want %d", when, len(evs), len(want))
		}
		for _, e := range evs {
			wantState := testTracestate
			if want[e.EventID] == "" {
				wantState = ""
			}
			if e.Traceparent != want[e.EventID] || e.Tracestate != wantState {
				t.Errorf("%s: event %s has traceparent %q tracestate %q, want %q %q", when, e.Action, e.Traceparent, e.Tracestate, want[e.EventID], wantState)
			}
		}
	}
	check("ListOutbox", outbox(t, s, tenant, store.OutboxPending))
	check("DueEvents", due(t, s, tenant, time.Now().Add(time.Minute)))
	// A failed attempt rewrites the event (Table: the whole entity); the
	// trace context stays, also in the dead-letter state.
	now := time.Now()
	for _, ev := range []*store.OutboxEvent{created, once, updated, deleted, untraced} {
		if err := s.MarkFailed(ctx(t), tenant, ev.EventID, "unavailable", now, false); err != nil {
			t.Fatal(err)
		}
	}
	check("DueEvents after a failure", due(t, s, tenant, now.Add(time.Minute)))
	if err := s.MarkFailed(ctx(t), tenant, created.EventID, "rejected", now, true); err != nil {
		t.Fatal(err)
	}
	dead := outbox(t, s, tenant, store.OutboxDead)
	if len(dead) != 1 || dead[0].Traceparent != parent(0) || dead[0].Tracestate != testTracestate {
		t.Errorf("dead letter: %+v", dead)
	}
}

// testOutboxTraceContextBounds: a trace context over its bounds is refused
// with the write (nothing is stored); one at the bounds is kept whole.
func testOutboxTraceContextBounds(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	long := tracedEvent("task.created", strings.Repeat("0", store.MaxTraceparentLength+1))
	_, err := s.CreateTask(ctx(t), newTask(tenant, "t"), long)
	wantErr(t, "CreateTask(traceparent too long)", err, store.ErrInvalid)
	long = tracedEvent("task.created", testTraceparent)
	long.Tracestate = strings.Repeat("a", store.MaxTracestateLength+1)
	_, err = s.CreateTask(ctx(t), newTask(tenant, "t"), long)
	wantErr(t, "CreateTask(tracestate too long)", err, store.ErrInvalid)
	bad := tracedEvent("task.created", "00-\xff")
	_, err = s.CreateTask(ctx(t), newTask(tenant, "t"), bad)
	wantErr(t, "CreateTask(traceparent not UTF-8)", err, store.ErrInvalid)
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 0 {
		t.Errorf("refused events left tasks: %+v", tasks)
	}
	full := tracedEvent("task.created", strings.Repeat("f", store.MaxTraceparentLength))
	full.Tracestate = strings.Repeat("b", store.MaxTracestateLength)
	if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), full); err != nil {
		t.Fatalf("CreateTask(trace context at its bounds): %v", err)
	}
	got := outbox(t, s, tenant, store.OutboxPending)
	if len(got) != 1 || got[0].Traceparent != full.Traceparent || got[0].Tracestate != full.Tracestate {
		t.Errorf("the trace context at its bounds was not kept whole: %d events", len(got))
	}
}

// testOutboxDepth: a tenant's depth counts its pending and dead events and
// dates its oldest pending one; every tenant's ("") holds at least as much
// (other subtests share the store, so only a bound holds there).
func testOutboxDepth(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	depth := func(tenant string) store.OutboxDepth {
		t.Helper()
		d, err := s.OutboxDepth(ctx(t), tenant)
		if err != nil {
			t.Fatalf("OutboxDepth(%q): %v", tenant, err)
		}
		return d
	}
	if d := depth(tenant); d != (store.OutboxDepth{}) {
		t.Errorf("an empty outbox: %+v", d)
	}
	var evs []*store.OutboxEvent
	for i := range 4 {
		ev := newEvent("task.created")
		if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), ev); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		evs = append(evs, ev)
	}
	// Another tenant's events are not this tenant's.
	if _, err := s.CreateTask(ctx(t), newTask(randomID("tenant"), "other"), newEvent("task.created")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.MarkFailed(ctx(t), tenant, evs[0].EventID, "rejected", now, true); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx(t), tenant, evs[3].EventID); err != nil {
		t.Fatal(err)
	}
	d := depth(tenant)
	if d.Pending != 2 || d.Dead != 1 || !d.OldestPending.Equal(evs[1].CreatedAt) {
		t.Errorf("depth = %+v, want 2 pending, 1 dead, the oldest pending written at %v", d, evs[1].CreatedAt)
	}
	all := depth("")
	if all.Pending < d.Pending || all.Dead < d.Dead || all.OldestPending.IsZero() || all.OldestPending.After(d.OldestPending) {
		t.Errorf("every tenant's depth %+v holds less than one tenant's %+v", all, d)
	}
	// The oldest pending event delivered, the next one is the oldest.
	if err := s.MarkDelivered(ctx(t), tenant, evs[1].EventID); err != nil {
		t.Fatal(err)
	}
	if d := depth(tenant); d.Pending != 1 || !d.OldestPending.Equal(evs[2].CreatedAt) {
		t.Errorf("depth after delivering the oldest = %+v, want 1 pending written at %v", d, evs[2].CreatedAt)
	}
}
