package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans: every listing, with and without a cursor, reads its rows
// in order from the index made for it (no sort of the whole match in a
// temporary b-tree), and the sweep's due query uses outbox_due. Plans come
// from EXPLAIN QUERY PLAN on a migrated database.
func TestQueryPlans(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		name  string
		q     sqliteQuery
		index string
	}{
		{"tasks", tasksQuery("t"), "tasks_by_tenant_created"},
		{"notifications", notificationsQuery("t", "u"), "notifications_by_user_ts"},
		{"audit of a tenant", auditQuery("t"), "audit_by_tenant_ts"},
		{"audit of every tenant", auditQuery(""), "audit_by_ts"},
		{"outbox", outboxQuery("t", "pending"), "outbox_by_tenant_state"},
	} {
		for _, cursor := range []bool{false, true} {
			args := append([]any(nil), tt.q.args...)
			if cursor {
				args = append(args, int64(1), "x")
			}
			args = append(args, 51)
			plan := explain(t, s, tt.q.text(cursor), args...)
			if !strings.Contains(plan, "INDEX "+tt.index) || strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("%s (cursor %v): plan %q, want %s and no temporary b-tree", tt.name, cursor, plan, tt.index)
			}
		}
	}
	if plan := explain(t, s, dueEventsSQL, "pending", int64(1), 10); !strings.Contains(plan, "INDEX outbox_due") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("due events: plan %q, want outbox_due and no temporary b-tree", plan)
	}
}

// explain returns the plan's details, one per line.
func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestMigrationToAscendingIndexes: a database at schema version 3 (the
// descending indexes), with tasks in it, opens at the newest version with
// the indexes ascending, and lists its tasks newest first as before.
func TestMigrationToAscendingIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	dsn, _, err := sqliteDSN(path, sqliteBusyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, step := range sqliteMigrations[:3] {
		for _, stmt := range step {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b, c := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	for i, id := range []string{a, c, b} {
		if _, err := db.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`) VALUES ('t', ?, 'x', '', 0, 'u', 'U', ?, ?, 'e')`,
			id, 100+i/2, 100+i/2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil || version != len(sqliteMigrations) {
		t.Fatalf("user_version %d (%v), want %d", version, err, len(sqliteMigrations))
	}
	var desc int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql LIKE '%DESC%'`).Scan(&desc); err != nil || desc != 0 {
		t.Errorf("%d descending indexes after the migration (%v), want 0", desc, err)
	}
	page, err := s.ListTasks(ctx, "t", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	next, err := s.ListTasks(ctx, "t", 2, page.Next)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range append(page.Items, next.Items...) {
		ids = append(ids, task.ID)
	}
	// b at 101, then a and c at 100 (c first: ids descending).
	if got, want := strings.Join(ids, ","), strings.Join([]string{b, c, a}, ","); got != want {
		t.Errorf("tasks listed %s, want %s", got, want)
	}
}
