package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// outboxRows counts the outbox's rows as the file holds them (through the
// database handle: no flush of the noted deletes).
func outboxRows(t *testing.T, s *sqlite.Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createWithEvent creates a task with its event and returns the event.
func createWithEvent(t *testing.T, s *sqlite.Store, tenant string) store.OutboxEvent {
	t.Helper()
	ev := store.OutboxEvent{EventID: store.NewUUIDv7(), Action: "task.created", Actor: "u"}
	if _, err := s.CreateTask(t.Context(), store.Task{TenantID: tenant, Title: "t", CreatedBy: "u", CreatedByName: "U"}, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestDeliveredDeletedWithNextWrite: a delivered event's row stays until
// the next task write, which deletes it in its own transaction; reads of
// the outbox never show it meanwhile.
func TestDeliveredDeletedWithNextWrite(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
	s.SetDeliveredDelay(time.Hour)
	ctx := t.Context()
	ev := createWithEvent(t, s, "t1")
	if err := s.MarkDelivered(ctx, "t1", ev.EventID); err != nil {
		t.Fatal(err)
	}
	if n := outboxRows(t, s); n != 1 {
		t.Fatalf("%d outbox rows right after MarkDelivered, want 1 (the delete waits for a write)", n)
	}
	next := createWithEvent(t, s, "t1")
	if n := outboxRows(t, s); n != 1 {
		t.Fatalf("%d outbox rows after the next create, want 1 (its own event)", n)
	}
	due, err := s.DueEvents(ctx, time.Now().Add(time.Hour), store.MaxPageSize)
	if err != nil || len(due) != 1 || due[0].EventID != next.EventID {
		t.Fatalf("DueEvents = %v, %v; want only %s", due, err, next.EventID)
	}
}

// TestDeliveredDeletedBeforeReads: every read of the outbox deletes the
// noted events first, so none shows a delivered event as pending, and
// MarkFailed of one finds it gone (ErrNotFound, as before).
func TestDeliveredDeletedBeforeReads(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for name, read := range map[string]func(*sqlite.Store, store.OutboxEvent) (int, error){
		"DueEvents": func(s *sqlite.Store, _ store.OutboxEvent) (int, error) {
			evs, err := s.DueEvents(ctx, later, store.MaxPageSize)
			return len(evs), err
		},
		"CountDue": func(s *sqlite.Store, _ store.OutboxEvent) (int, error) { return s.CountDue(ctx, later) },
		"ListOutbox": func(s *sqlite.Store, ev store.OutboxEvent) (int, error) {
			p, err := s.ListOutbox(ctx, ev.TenantID, store.OutboxPending, 0, "")
			return len(p.Items), err
		},
		"MarkFailed": func(s *sqlite.Store, ev store.OutboxEvent) (int, error) {
			err := s.MarkFailed(ctx, ev.TenantID, ev.EventID, "x", later, false)
			if errors.Is(err, store.ErrNotFound) {
				return 0, nil
			}
			return 1, err
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
			s.SetDeliveredDelay(time.Hour)
			ev := createWithEvent(t, s, "t1")
			if err := s.MarkDelivered(ctx, "t1", ev.EventID); err != nil {
				t.Fatal(err)
			}
			if n, err := read(s, ev); err != nil || n != 0 {
				t.Errorf("%s after MarkDelivered: %d, %v; want 0", name, n, err)
			}
			if n := outboxRows(t, s); n != 0 {
				t.Errorf("%d outbox rows after %s, want 0", n, name)
			}
		})
	}
}

// TestDeliveredDeletedAfterDelay: with no write, the delete comes on its
// own after the delay.
func TestDeliveredDeletedAfterDelay(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
	s.SetDeliveredDelay(10 * time.Millisecond)
	ev := createWithEvent(t, s, "t1")
	if err := s.MarkDelivered(t.Context(), "t1", ev.EventID); err != nil {
		t.Fatal(err)
	}
	// Polling with a generous bound (the delay is a timer, not checked here).
	for deadline := time.Now().Add(30 * time.Second); outboxRows(t, s) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delivered event's row is still there after 30 s")
		}
	}
}

// TestDeliveredNotesBounded: at MaxDeliveredNotes noted events, the next
// MarkDelivered deletes them at once.
func TestDeliveredNotesBounded(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
	s.SetDeliveredDelay(time.Hour)
	ctx := t.Context()
	var evs []store.OutboxEvent
	for i := range sqlite.MaxDeliveredNotes + 1 {
		evs = append(evs, createWithEvent(t, s, fmt.Sprint("t", i%3)))
	}
	for i, ev := range evs[:sqlite.MaxDeliveredNotes] {
		if err := s.MarkDelivered(ctx, ev.TenantID, ev.EventID); err != nil {
			t.Fatal(i, err)
		}
	}
	if n := outboxRows(t, s); n != len(evs) {
		t.Fatalf("%d outbox rows with %d noted, want %d", n, sqlite.MaxDeliveredNotes, len(evs))
	}
	last := evs[len(evs)-1]
	if err := s.MarkDelivered(ctx, last.TenantID, last.EventID); err != nil {
		t.Fatal(err)
	}
	if n := outboxRows(t, s); n != 1 {
		t.Fatalf("%d outbox rows after one more MarkDelivered, want 1 (the bound's deletes done, the last noted)", n)
	}
}

// TestDeliveredKeptAfterFailedWrite: a write that fails (a stale If-Match)
// rolls back the deletes it carried; they come with the next write.
func TestDeliveredKeptAfterFailedWrite(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
	s.SetDeliveredDelay(time.Hour)
	ctx := t.Context()
	ev := createWithEvent(t, s, "t1")
	if err := s.MarkDelivered(ctx, "t1", ev.EventID); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateTask(ctx, "t1", ev.ResourceID, `"stale"`, store.TaskPatch{Completed: new(true)}, nil)
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("UpdateTask with a stale If-Match: %v", err)
	}
	if n := outboxRows(t, s); n != 1 {
		t.Fatalf("%d outbox rows after a failed write, want 1 (its deletes rolled back)", n)
	}
	if _, err := s.UpdateTask(ctx, "t1", ev.ResourceID, "", store.TaskPatch{Completed: new(true)}, nil); err != nil {
		t.Fatal(err)
	}
	if n := outboxRows(t, s); n != 0 {
		t.Fatalf("%d outbox rows after the next write, want 0", n)
	}
}

// TestDeliveredDeletedAtClose: Close deletes what is noted; a reopened
// store finds the outbox empty.
func TestDeliveredDeletedAtClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeliveredDelay(time.Hour)
	ev := createWithEvent(t, s, "t1")
	if err := s.MarkDelivered(t.Context(), "t1", ev.EventID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(t.Context(), "t1", ev.EventID); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("MarkDelivered after Close: %v, want ErrUnavailable", err)
	}
	if n := outboxRows(t, openSQLite(t, path)); n != 0 {
		t.Errorf("%d outbox rows after Close, want 0", n)
	}
}
