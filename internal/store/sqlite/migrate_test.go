package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// TestSQLiteTraceContextMigration: a database written before outbox events
// kept their trace context (schema version 3) opens, its pending event
// reads with none, and events written after carry theirs.
func TestSQLiteTraceContextMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range sqlite.Migrations[:3] {
		for _, stmt := range step {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	old := time.Now().Add(-time.Hour).UnixMicro()
	if _, err := db.Exec(`PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO outbox (tenant_id, event_id, action, resource_id, actor, created_at, state, attempts, next_attempt, last_error)
		VALUES ('tenant-a', 'ev-old', 'task.created', 'task-1', 'oid', ?, 'pending', 0, ?, '')`, old, old); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openSQLite(t, path)
	var version int
	if err := s.DB().QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != sqlite.SchemaVersion {
		t.Fatalf("user_version %d (%v), want %d", version, err, sqlite.SchemaVersion)
	}
	ev := &store.OutboxEvent{EventID: "ev-new", Action: "task.created", Actor: "oid",
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Tracestate: "rojo=00f067aa0ba902b7"}
	if _, err := s.CreateTask(t.Context(), store.Task{TenantID: "tenant-a", Title: "after", CreatedBy: "oid"}, ev); err != nil {
		t.Fatal(err)
	}
	evs, err := s.DueEvents(t.Context(), time.Now().Add(time.Minute), 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("DueEvents: %d events, %v", len(evs), err)
	}
	if evs[0].EventID != "ev-old" || evs[0].Traceparent != "" || evs[0].Tracestate != "" {
		t.Errorf("the event written before the migration: %+v", evs[0])
	}
	if evs[1].EventID != "ev-new" || evs[1].Traceparent != ev.Traceparent || evs[1].Tracestate != ev.Tracestate {
		t.Errorf("the event written after the migration: %+v", evs[1])
	}
}
