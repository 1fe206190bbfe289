package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

// replayTests hold the backends to the contract of OutboxReplay.
var replayTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Replay/MovesOnlyDeadLetters", testReplayMovesDead},
	{"Replay/NotFound", testReplayNotFound},
	{"Replay/AllOrNothing", testReplayAtomic},
	{"Replay/ConcurrentReplaysMoveOnce", testReplayConcurrent},
	{"Replay/AReplayAuditIsNotAuditedAgain", testReplayNoLoop},
}

// deadLetter writes a task with an event and dead-letters the event.
func deadLetter(t *testing.T, s store.Store, tenant string) store.OutboxEvent {
	t.Helper()
	ev := newEvent("task.created")
	if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), ev); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx(t), tenant, ev.EventID, "rejected: 400", time.Now(), true); err != nil {
		t.Fatal(err)
	}
	return *ev
}

func replayAudit() *store.OutboxEvent {
	return &store.OutboxEvent{EventID: randomID("ev-replay"), Action: store.ActionOutboxReplay, Actor: "oid-operator"}
}

func testReplayMovesDead(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	dead := deadLetter(t, s, tenant)
	next := time.Now().Add(time.Minute)
	audit := replayAudit()
	got, replayed, err := s.ReplayDead(ctx(t), tenant, dead.EventID, next, audit)
	if err != nil || !replayed {
		t.Fatalf("ReplayDead = %v, %v", replayed, err)
	}
	if got.EventID != dead.EventID || got.State != store.OutboxPending || got.Attempts != 0 || !got.NextAttempt.Equal(store.NormTime(next)) ||
		got.LastError != "rejected: 400" || got.ResourceID != dead.ResourceID || !got.CreatedAt.Equal(dead.CreatedAt) {
		t.Errorf("replayed event = %+v (was %+v)", got, dead)
	}
	if d := outbox(t, s, tenant, store.OutboxDead); len(d) != 0 {
		t.Errorf("dead after the replay: %+v", d)
	}
	if got := due(t, s, tenant, next.Add(-time.Second)); len(got) != 1 || got[0].EventID != audit.EventID {
		t.Errorf("due before the replayed event's next attempt = %+v, want the replay's audit event only", got)
	}
	pending := outbox(t, s, tenant, store.OutboxPending)
	if len(pending) != 2 {
		t.Fatalf("pending after the replay = %+v, want the event and its audit", pending)
	}
	for _, e := range pending {
		if e.EventID == audit.EventID && (e.ResourceID != dead.EventID || e.TenantID != tenant || e.Action != store.ActionOutboxReplay || !sameEvent(*audit, e)) {
			t.Errorf("the replay's audit event = %+v (the caller holds %+v)", e, *audit)
		}
	}
	// Again: the event is pending, returned as is, and nothing is written.
	again, replayed, err := s.ReplayDead(ctx(t), tenant, dead.EventID, next.Add(time.Hour), replayAudit())
	if err != nil || replayed || again.State != store.OutboxPending || !again.NextAttempt.Equal(got.NextAttempt) {
		t.Errorf("a second replay = %+v, %v, %v; want the pending event unchanged", again, replayed, err)
	}
	// A pending event that never died is not replayed either.
	if _, replayed, err := s.ReplayDead(ctx(t), tenant, audit.EventID, next, replayAudit()); err != nil || replayed {
		t.Errorf("replaying a pending event: %v, %v", replayed, err)
	}
	if n := len(outbox(t, s, tenant, store.OutboxPending)); n != 2 {
		t.Errorf("%d pending events after the refused replays, want 2", n)
	}
	// Replay without an audit event moves it too.
	other := deadLetter(t, s, tenant)
	if _, replayed, err := s.ReplayDead(ctx(t), tenant, other.EventID, next, nil); err != nil || !replayed {
		t.Errorf("replay without an audit event: %v, %v", replayed, err)
	}
}

func testReplayNotFound(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	dead := deadLetter(t, s, tenant)
	now := time.Now()
	_, _, err := s.ReplayDead(ctx(t), tenant, randomID("ev"), now, replayAudit())
	wantErr(t, "ReplayDead(unknown)", err, store.ErrNotFound)
	_, _, err = s.ReplayDead(ctx(t), randomID("tenant"), dead.EventID, now, replayAudit())
	wantErr(t, "ReplayDead(another tenant's event)", err, store.ErrNotFound)
	delivered := deadLetter(t, s, tenant)
	if err := s.MarkDelivered(ctx(t), tenant, delivered.EventID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ReplayDead(ctx(t), tenant, delivered.EventID, now, replayAudit())
	wantErr(t, "ReplayDead(delivered)", err, store.ErrNotFound)
	_, _, err = s.ReplayDead(ctx(t), "", dead.EventID, now, nil)
	wantErr(t, "ReplayDead(no tenant)", err, store.ErrInvalid)
	_, _, err = s.ReplayDead(ctx(t), tenant, " ", now, nil)
	wantErr(t, "ReplayDead(no event id)", err, store.ErrInvalid)
	if d := outbox(t, s, tenant, store.OutboxDead); len(d) != 1 || d[0].EventID != dead.EventID {
		t.Errorf("dead letters after the refusals = %+v", d)
	}
	if p := outbox(t, s, tenant, store.OutboxPending); len(p) != 0 {
		t.Errorf("the refusals wrote %+v", p)
	}
}

// testReplayAtomic: an audit event the store refuses leaves the dead
// letter dead.
func testReplayAtomic(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	dead := deadLetter(t, s, tenant)
	foreign := replayAudit()
	foreign.TenantID = randomID("other")
	_, _, err := s.ReplayDead(ctx(t), tenant, dead.EventID, time.Now(), foreign)
	wantErr(t, "ReplayDead(audit of another tenant)", err, store.ErrInvalid)
	_, _, err = s.ReplayDead(ctx(t), tenant, dead.EventID, time.Now(), &store.OutboxEvent{EventID: randomID("ev"), Actor: "a"})
	wantErr(t, "ReplayDead(audit without action)", err, store.ErrInvalid)
	// Refused inside the transaction: the audit event's id is taken.
	taken := replayAudit()
	taken.EventID = dead.EventID
	if _, replayed, err := s.ReplayDead(ctx(t), tenant, dead.EventID, time.Now(), taken); err == nil || replayed {
		t.Errorf("ReplayDead with an audit event id already in the outbox = %v, %v", replayed, err)
	}
	if d := outbox(t, s, tenant, store.OutboxDead); len(d) != 1 || d[0].Attempts != 1 {
		t.Errorf("dead letters after the refused replays = %+v, want the one, untouched", d)
	}
	if p := outbox(t, s, tenant, store.OutboxPending); len(p) != 0 {
		t.Errorf("the refused replays wrote %+v", p)
	}
}

func testReplayConcurrent(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	dead := deadLetter(t, s, tenant)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	moved, errs := 0, []error{}
	for range n {
		wg.Go(func() {
			_, replayed, err := s.ReplayDead(ctx(t), tenant, dead.EventID, time.Now(), replayAudit())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if replayed {
				moved++
			}
		})
	}
	wg.Wait()
	if moved != 1 || len(errs) != 0 {
		t.Errorf("%d concurrent replays: %d moved the event, errors %v; want exactly one, none", n, moved, errors.Join(errs...))
	}
	audits := 0
	for _, e := range outbox(t, s, tenant, store.OutboxPending) {
		if e.Action == store.ActionOutboxReplay {
			audits++
		}
	}
	if audits != 1 {
		t.Errorf("%d replay audit events written, want 1", audits)
	}
}

// testReplayNoLoop: replaying a replay's own audit record (dead-lettered)
// moves it, but writes no further audit record.
func testReplayNoLoop(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	dead := deadLetter(t, s, tenant)
	first := replayAudit()
	if _, replayed, err := s.ReplayDead(ctx(t), tenant, dead.EventID, time.Now(), first); err != nil || !replayed {
		t.Fatalf("ReplayDead = %v, %v", replayed, err)
	}
	if err := s.MarkFailed(ctx(t), tenant, first.EventID, "rejected: 400", time.Now(), true); err != nil {
		t.Fatal(err)
	}
	second := replayAudit()
	kept := *second
	got, replayed, err := s.ReplayDead(ctx(t), tenant, first.EventID, time.Now(), second)
	if err != nil || !replayed || got.Action != store.ActionOutboxReplay || got.State != store.OutboxPending {
		t.Fatalf("replaying the replay's audit record = %+v, %v, %v", got, replayed, err)
	}
	if *second != kept {
		t.Errorf("the caller's audit event was changed to %+v, but none was written", *second)
	}
	for _, e := range outbox(t, s, tenant, store.OutboxPending) {
		if e.EventID == second.EventID {
			t.Errorf("a replay of a replay's audit record was audited: %+v", e)
		}
	}
	if n := len(outbox(t, s, tenant, store.OutboxPending)); n != 2 {
		t.Errorf("%d pending events, want the first event and its replay's audit record", n)
	}
}
