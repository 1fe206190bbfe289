package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
	"github.com/handoff-dev/handoff/internal/store/storetest"
)

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLiteContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "handoff.db"))
	})
}

func TestSQLiteMemoryContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, ":memory:")
	})
}

// TestSQLiteSharedContract runs the suite's subtests in parallel on one
// store, as a shared backend would.
func TestSQLiteSharedContract(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, filepath.Join(t.TempDir(), "shared.db"))
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestSQLitePreparedStatements: the whole contract suite on one store runs
// every statement of a transaction prepared (none is missing from the
// statements prepared at open), and keeps the other statements prepared
// too, within the bound.
func TestSQLitePreparedStatements(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "prepared.db"))
	opened := s.CachedStatements()
	if opened == 0 {
		t.Fatal("no statement prepared at open")
	}
	t.Run("contract", func(t *testing.T) {
		storetest.Run(t, func(*testing.T) store.Store { return s })
	})
	if n := s.UncachedInTx(); n != 0 {
		t.Errorf("%d statements ran in a transaction unprepared: add them to txStatements", n)
	}
	if n := s.CachedStatements(); n <= opened || n > sqlite.MaxCachedStatements {
		t.Errorf("%d statements prepared after the suite (%d at open), want more, at most %d", n, opened, sqlite.MaxCachedStatements)
	}
}

// TestSQLiteStatementCacheBound: a full cache prepares no more, and the
// queries past it still run (unprepared), with the same results.
func TestSQLiteStatementCacheBound(t *testing.T) {
	s := openSQLite(t, ":memory:")
	ctx := t.Context()
	full := s.CachedStatements() // the transactions' statements, prepared at open
	s.SetStatementBound(full)
	task, err := s.CreateTask(ctx, store.Task{TenantID: "tenant-1", Title: "bounded", CreatedBy: "u", CreatedByName: "U"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, "tenant-1", task.ID)
	if err != nil || got.Title != "bounded" {
		t.Fatalf("GetTask past the bound: %+v, %v", got, err)
	}
	page, err := s.ListTasks(ctx, "tenant-1", 0, "")
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != task.ID {
		t.Fatalf("ListTasks past the bound: %+v, %v", page, err)
	}
	if n := s.CachedStatements(); n != full {
		t.Errorf("%d statements prepared with the bound at %d", n, full)
	}
}

func TestSQLiteReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "survives", Description: "d", CreatedBy: "u1", CreatedByName: "U"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	task, err = s.UpdateTask(ctx, "t1", task.ID, task.ETag, store.TaskPatch{Completed: new(true)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.AddNotification(ctx, store.Notification{Event: "e", TenantID: "t1", UserOID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := s.AppendAudit(ctx, store.AuditEntry{EventID: "ev1", Action: "a", TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openSQLite(t, path)
	got, err := s.GetTask(ctx, "t1", task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != task {
		t.Errorf("after reopen: %+v, want %+v", got, task)
	}
	ns, err := s.ListNotifications(ctx, "t1", "u1", 0, "")
	if err != nil || len(ns.Items) != 1 || ns.Items[0] != n {
		t.Errorf("notifications after reopen: %+v, %v; want [%+v]", ns.Items, err, n)
	}
	again, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: "ev1", Action: "b", TenantID: "t1"})
	if err != nil || created || again != e {
		t.Errorf("AppendAudit(same event) after reopen: %+v, %v, %v; want %+v, not created", again, created, err, e)
	}
	// The old ETag still guards the task.
	if _, err := s.UpdateTask(ctx, "t1", task.ID, `"stale"`, store.TaskPatch{}, nil); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Errorf("UpdateTask(stale ETag) after reopen: %v", err)
	}
}

func TestSQLiteClosed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ops := map[string]func() error{
		"CreateTask": func() error { _, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "x"}, nil); return err },
		"GetTask":    func() error { _, err := s.GetTask(ctx, "t1", task.ID); return err },
		"ListTasks":  func() error { _, err := s.ListTasks(ctx, "t1", 0, ""); return err },
		"UpdateTask": func() error { _, err := s.UpdateTask(ctx, "t1", task.ID, "", store.TaskPatch{}, nil); return err },
		"UpdateTask(If-Match)": func() error {
			_, err := s.UpdateTask(ctx, "t1", task.ID, task.ETag, store.TaskPatch{}, nil)
			return err
		},
		"DeleteTask":           func() error { return s.DeleteTask(ctx, "t1", task.ID, "", nil) },
		"DeleteTask(If-Match)": func() error { return s.DeleteTask(ctx, "t1", task.ID, `"other"`, nil) },
		"AddNotification": func() error {
			_, err := s.AddNotification(ctx, store.Notification{TenantID: "t1", UserOID: "u"})
			return err
		},
		"ListNotifications": func() error { _, err := s.ListNotifications(ctx, "t1", "u", 0, ""); return err },
		"AppendAudit": func() error {
			_, _, err := s.AppendAudit(ctx, store.AuditEntry{EventID: "e", TenantID: "t1"})
			return err
		},
		"ListAudit": func() error { _, err := s.ListAudit(ctx, "", 0, ""); return err },
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v, want ErrUnavailable", name, err)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPreconditionFailed) {
			t.Errorf("%s on a closed store: %v, want no answer about the record", name, err)
		}
	}
}

// TestSQLiteLocked holds the write lock from another connection (as
// another process would) past the busy timeout: writes fail with
// ErrUnavailable, and succeed once the lock is released within it.
func TestSQLiteLocked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "locked.db")
	s, err := sqlite.OpenBusyTimeout(path, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	patient := openSQLite(t, path) // the default 5 s busy timeout

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "blocked"}, nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateTask while locked: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("CreateTask gave up after %v, before the busy timeout", d)
	}
	_, _, err = s.AppendAudit(ctx, store.AuditEntry{EventID: "e1", TenantID: "t1"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AppendAudit while locked: %v, want ErrUnavailable", err)
	}
	// An up-to-date database opens without waiting for the writer.
	late, err := sqlite.OpenBusyTimeout(path, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("Open while another connection writes: %v", err)
	}
	_ = late.Close()

	// Released within the busy timeout: the write waits and succeeds.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = conn.ExecContext(context.Background(), "COMMIT")
	}()
	if _, err := patient.CreateTask(ctx, store.Task{TenantID: "t1", Title: "waited"}, nil); err != nil {
		t.Fatalf("CreateTask after the lock is released: %v", err)
	}
}

// TestSQLiteTwoStores writes to one file from two stores at once (two
// processes, as far as SQLite can tell): the busy timeout lets them take
// turns, and audit idempotency holds across them.
func TestSQLiteTwoStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "two.db")
	stores := []*sqlite.Store{openSQLite(t, path), openSQLite(t, path)}
	const perStore = 40
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for i, s := range stores {
		wg.Go(func() {
			for j := range perStore {
				if _, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: fmt.Sprintf("s%d-%d", i, j)}, nil); err != nil {
					t.Errorf("store %d CreateTask: %v", i, err)
					return
				}
				_, c, err := s.AppendAudit(ctx, store.AuditEntry{EventID: fmt.Sprintf("ev-%d", j), TenantID: "t1"})
				if err != nil {
					t.Errorf("store %d AppendAudit: %v", i, err)
					return
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if created != perStore {
		t.Errorf("%d audit entries created for %d event ids", created, perStore)
	}
	for i, s := range stores {
		var n int
		cursor := ""
		for {
			p, err := s.ListTasks(ctx, "t1", store.MaxPageSize, cursor)
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Items)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if n != 2*perStore {
			t.Errorf("store %d lists %d tasks, want %d", i, n, 2*perStore)
		}
	}
}

// TestSQLiteWritePragmas pins the pragmas that decide how much a commit
// writes and what it survives (docs/configuration.md), read back from the
// store's own connection.
func TestSQLiteWritePragmas(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, filepath.Join(t.TempDir(), "pragmas.db"))
	if _, err := s.CreateTask(t.Context(), store.Task{TenantID: "t", Title: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	for pragma, want := range map[string]int64{
		"page_size":          1024,
		"synchronous":        1, // NORMAL
		"wal_autocheckpoint": 10000,
		"journal_size_limit": 16 << 20,
	} {
		var got int64
		if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %d, want %d", pragma, got, want)
		}
	}
}

// An existing database keeps the page size it was created with (SQLite
// changes it only on VACUUM): it opens, works, and is not rewritten.
func TestSQLiteExistingPageSizeKept(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"PRAGMA page_size=4096", "PRAGMA journal_mode=WAL", "CREATE TABLE before_open (x INTEGER)"} {
		if _, err := old.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openSQLite(t, path)
	if _, err := s.CreateTask(ctx, store.Task{TenantID: "t", Title: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	var size int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 4096 {
		t.Errorf("page_size of an existing database = %d, want its own 4096", size)
	}
}

func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "settings.db")
	s := openSQLite(t, path)
	db := s.DB()

	var mode string
	var fk, version, busy int
	for _, q := range []struct {
		pragma string
		dst    any
	}{
		{"journal_mode", &mode}, {"foreign_keys", &fk}, {"user_version", &version}, {"busy_timeout", &busy},
	} {
		if err := db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			t.Fatalf("PRAGMA %s: %v", q.pragma, err)
		}
	}
	if !strings.EqualFold(mode, "wal") || fk != 1 || version != sqlite.SchemaVersion || busy != 5000 {
		t.Errorf("journal_mode %s, foreign_keys %d, user_version %d, busy_timeout %d; want wal, 1, %d, 5000",
			mode, fk, version, busy, sqlite.SchemaVersion)
	}
	if got := db.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("MaxOpenConnections %d, want 1 (writes serialized)", got)
	}

	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %v, want %v", p, got, want)
			}
		}
		if _, err := s.CreateTask(ctx, store.Task{TenantID: "t", Title: "x"}, nil); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("WAL file: %v, %v; want mode 0600", fi, err)
		}
	}
}

// TestSQLitePathCharacters opens a database whose path holds characters of
// URI syntax.
func TestSQLitePathCharacters(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("'?' is not allowed in Windows file names")
	}
	path := filepath.Join(t.TempDir(), "we?ird #dir %41", "db?x=1#frag")
	s := openSQLite(t, path)
	if _, err := s.CreateTask(t.Context(), store.Task{TenantID: "t", Title: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at its path: %v", err)
	}
}

func TestSQLiteNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "newer.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", sqlite.SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(path); err == nil {
		_ = s.Close()
		t.Fatal("Open opened a database of a newer schema version")
	}
}

func TestSQLiteOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := sqlite.Open(""); err == nil {
		t.Error(`Open("") succeeded`)
	}
	notDB := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(notDB); err == nil {
		_ = s.Close()
		t.Error("Open opened a file that is not a database")
	} else if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open(not a database): %v, want ErrUnavailable", err)
	}
}

func TestSQLiteCanceledContext(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, ":memory:")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.CreateTask(ctx, store.Task{TenantID: "t", Title: "x"}, nil)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTask(canceled context): %v, want ErrUnavailable and context.Canceled", err)
	}
}
