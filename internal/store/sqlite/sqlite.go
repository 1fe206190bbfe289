// Package sqlite is the SQLite backend of store (embedded, the default for
// local and single-instance runs): one file per entity (tasks, outbox,
// notifications, audit, idempotency); this file opens, migrates and lists.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver

	"github.com/handoff-dev/handoff/internal/store"
)

// Store is the embedded Store: one SQLite database file, through the
// pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode with foreign keys on and a busy timeout
// (5 s), so other processes opening the same file wait for each other's
// writes instead of failing at once. Within the process, the store holds a
// single connection (MaxOpenConns 1): SQLite allows one writer at a time
// anyway, and one connection serializes every statement, reads included,
// without ever waiting on SQLite's busy handler. Statements are short, so
// a single-instance service does not notice; callers queue in database/sql
// and give up when their context ends.
//
// A committed write survives the process being killed; it is synced to
// disk at the next checkpoint, so an operating-system crash or power loss
// can lose the last commits (synchronous=NORMAL, see sqliteDSN).
//
// Every error that comes from the database (locked beyond the busy timeout,
// store closed, disk full or failing, context ended while waiting) wraps
// ErrUnavailable.
//
// A SQLite is safe for concurrent use.
type Store struct {
	db        *sql.DB
	stmts     stmtCache
	delivered deliveredNotes // see MarkDelivered
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// sqliteBusyTimeout is how long a statement waits for another connection's
// (another process's) lock before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 5 * time.Second

// sqliteOpenTimeout bounds opening and migrating the database.
const sqliteOpenTimeout = 30 * time.Second

// sqlitePageSize is the page size of a new database file, in bytes.
const sqlitePageSize = 1024

// sqliteWALAutocheckpointPages is how many pages the WAL holds before a
// commit checkpoints it into the database (about 10 MiB at
// sqlitePageSize; SQLite's default is 1000).
const sqliteWALAutocheckpointPages = 10000

// sqliteJournalSizeLimit is the size, in bytes, the WAL is truncated to
// after a checkpoint when it has grown larger.
const sqliteJournalSizeLimit = 16 << 20

// Open opens (creating it if need be) the SQLite database at path and
// brings its schema up to date. Missing parent directories are created
// (mode 0700) and a new database file is created with mode 0600 (SQLite
// gives its -wal and -shm files the same mode). path ":memory:" opens a
// private in-memory database, for tests; it lives as long as the store.
func Open(path string) (*Store, error) {
	return openWith(path, sqliteBusyTimeout)
}

func openWith(path string, busyTimeout time.Duration) (*Store, error) {
	dsn, memory, err := sqliteDSN(path, busyTimeout)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, sqliteErr("open "+path, err)
	}
	// One connection: writes are serialized here rather than by SQLite's
	// busy handler, and an in-memory database (one per connection) stays
	// one database. The connection is never closed for being idle or old.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db}
	s.stmts.max = maxCachedStatements
	s.delivered.delay = deliveredFlushDelay

	ctx, cancel := context.WithTimeout(context.Background(), sqliteOpenTimeout)
	defer cancel()
	if err := s.init(ctx, memory); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w (database %s)", err, path)
	}
	return s, nil
}

// sqliteDSN returns the driver's data source name for path, creating the
// file's parent directories and the (empty) file if missing.
func sqliteDSN(path string, busyTimeout time.Duration) (dsn string, memory bool, err error) {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	// Transactions take the write lock when they begin, so two of them
	// (from two processes) never deadlock upgrading a read lock.
	q.Set("_txlock", "immediate")
	if path == ":memory:" {
		return ":memory:?" + q.Encode(), true, nil
	}
	if path == "" {
		return "", false, errors.New("store: sqlite: empty database path")
	}
	// The pragmas below are chosen to write little per commit (measured with
	// make bench-load: ~125 KB per create across the three services with
	// 4 KiB pages, synchronous=FULL and the default checkpoint; 40-47 KB
	// with these); docs/configuration.md says what the backend survives.
	//
	// Small pages: a commit appends every page it touched to the WAL, and
	// a create touches a dozen (rows plus index entries of a few hundred
	// bytes each). page_size only takes on a new database (it runs before
	// journal_mode, so before the first write); an existing one keeps its
	// page size until VACUUMed.
	q.Add("_pragma", fmt.Sprintf("page_size=%d", sqlitePageSize))
	// A longer WAL between checkpoints: a page written by many commits
	// (the right edge of each index) is copied into the database once per
	// checkpoint, and checkpoints come 10x less often than SQLite's default.
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint=%d", sqliteWALAutocheckpointPages))
	// A WAL grown beyond this by a burst (a reader holding back the
	// checkpoint) is cut back to it after the next checkpoint.
	q.Add("_pragma", fmt.Sprintf("journal_size_limit=%d", sqliteJournalSizeLimit))
	q.Set("_journal_mode", "WAL")
	// NORMAL in WAL mode: a commit is written to the WAL (into the
	// operating system) before it returns, and the WAL is synced at each
	// checkpoint, not at each commit. A committed transaction survives the
	// process being killed (SIGKILL, crash); the last commits before an
	// operating-system crash or power loss may be lost (the database stays
	// consistent). FULL synced the WAL on every commit and rewrote its
	// partly filled last block each time.
	q.Set("_synchronous", "NORMAL")

	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false, fmt.Errorf("store: sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", store.ErrUnavailable, err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", store.ErrUnavailable, err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", store.ErrUnavailable, err)
	}
	// A file: URI, so that no character of the path ('?', '#', '%') is
	// taken for URI syntax: url.URL escapes them and SQLite unescapes them.
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/dir/file
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String(), false, nil
}

// sqliteMigrations are the schema versions: migrations[i] takes the
// database from user_version i to i+1. Append only; never edit a released
// step.
//
// Times are INTEGER microseconds since the Unix epoch (UTC), so that they
// sort and compare as numbers and come back exactly as written.
var sqliteMigrations = [][]string{
	// 1: tasks, notifications, audit log.
	{
		`CREATE TABLE IF NOT EXISTS tasks (
			tenant_id       TEXT    NOT NULL,
			id              TEXT    NOT NULL,
			title           TEXT    NOT NULL,
			description     TEXT    NOT NULL,
			completed       INTEGER NOT NULL,
			created_by      TEXT    NOT NULL,
			created_by_name TEXT    NOT NULL,
			created_at      INTEGER NOT NULL,
			updated_at      INTEGER NOT NULL,
			etag            TEXT    NOT NULL,
			PRIMARY KEY (tenant_id, id)
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS tasks_by_tenant_created
			ON tasks (tenant_id, created_at DESC, id DESC)`,
		`CREATE TABLE IF NOT EXISTS notifications (
			id         TEXT    NOT NULL PRIMARY KEY,
			tenant_id  TEXT    NOT NULL,
			user_oid   TEXT    NOT NULL,
			event      TEXT    NOT NULL,
			task_title TEXT    NOT NULL,
			to_name    TEXT    NOT NULL,
			email      TEXT    NOT NULL,
			caller_app TEXT    NOT NULL,
			ts         INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS notifications_by_user_ts
			ON notifications (tenant_id, user_oid, ts DESC, id DESC)`,
		`CREATE TABLE IF NOT EXISTS audit (
			id          TEXT    NOT NULL PRIMARY KEY,
			event_id    TEXT    NOT NULL,
			action      TEXT    NOT NULL,
			resource_id TEXT    NOT NULL,
			actor       TEXT    NOT NULL,
			tenant_id   TEXT    NOT NULL,
			caller_app  TEXT    NOT NULL,
			ts          INTEGER NOT NULL
		) STRICT`,
		`CREATE UNIQUE INDEX IF NOT EXISTS audit_event_id ON audit (event_id)`,
		`CREATE INDEX IF NOT EXISTS audit_by_tenant_ts ON audit (tenant_id, ts DESC, id DESC)`,
		`CREATE INDEX IF NOT EXISTS audit_by_ts ON audit (ts DESC, id DESC)`,
	},
	// 2: the audit outbox, written in the task write's transaction.
	{
		`CREATE TABLE IF NOT EXISTS outbox (
			tenant_id    TEXT    NOT NULL,
			event_id     TEXT    NOT NULL,
			action       TEXT    NOT NULL,
			resource_id  TEXT    NOT NULL,
			actor        TEXT    NOT NULL,
			created_at   INTEGER NOT NULL,
			state        TEXT    NOT NULL,
			attempts     INTEGER NOT NULL,
			next_attempt INTEGER NOT NULL,
			last_error   TEXT    NOT NULL,
			PRIMARY KEY (tenant_id, event_id)
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt, created_at)`,
		`CREATE INDEX IF NOT EXISTS outbox_by_tenant_state ON outbox (tenant_id, state, created_at DESC, event_id DESC)`,
	},
	// 3: idempotency keys of creates, written in the create's transaction.
	{
		`CREATE TABLE IF NOT EXISTS idempotency (
			tenant_id    TEXT    NOT NULL,
			user_id      TEXT    NOT NULL,
			key          TEXT    NOT NULL,
			request_hash TEXT    NOT NULL,
			task_id      TEXT    NOT NULL,
			task         TEXT    NOT NULL,
			created_at   INTEGER NOT NULL,
			expires_at   INTEGER NOT NULL,
			status       INTEGER NOT NULL,
			body         BLOB    NOT NULL,
			PRIMARY KEY (tenant_id, user_id, key)
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)`,
	},
	// 4: the W3C Trace Context of the request that wrote an outbox event;
	// events written before it have none ('').
	{
		`ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE outbox ADD COLUMN tracestate TEXT NOT NULL DEFAULT ''`,
	},
	// 5: the listings' indexes in ascending order. A listing reads them
	// backwards just as well (TestQueryPlans), and a new row's entry now
	// goes at the end of its range rather than at the front: inserting at
	// the front of a descending index split and rebalanced its pages about
	// every other insert (2.5-2.9 WAL frames per insert, 1.6-1.9 now;
	// docs/performance.md). Rebuilding an index reads its table once.
	{
		`DROP INDEX IF EXISTS tasks_by_tenant_created`,
		`CREATE INDEX tasks_by_tenant_created ON tasks (tenant_id, created_at, id)`,
		`DROP INDEX IF EXISTS notifications_by_user_ts`,
		`CREATE INDEX notifications_by_user_ts ON notifications (tenant_id, user_oid, ts, id)`,
		`DROP INDEX IF EXISTS audit_by_tenant_ts`,
		`CREATE INDEX audit_by_tenant_ts ON audit (tenant_id, ts, id)`,
		`DROP INDEX IF EXISTS audit_by_ts`,
		`CREATE INDEX audit_by_ts ON audit (ts, id)`,
		`DROP INDEX IF EXISTS outbox_by_tenant_state`,
		`CREATE INDEX outbox_by_tenant_state ON outbox (tenant_id, state, created_at, event_id)`,
	},
}

// init checks the connection settings and migrates the schema.
func (s *Store) init(ctx context.Context, memory bool) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return sqliteErr("open", err)
	}
	if !memory && !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("%w: sqlite: journal_mode is %q, not WAL (is the file system local?)", store.ErrUnavailable, mode)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.prepareAll(ctx, txStatements); err != nil {
		return sqliteErr("prepare", err)
	}
	return nil
}

// migrate brings the schema to the newest version, in one transaction
// (BEGIN IMMEDIATE, so concurrent openers take turns). An up-to-date
// database is only read, so opening it does not wait for other writers.
func (s *Store) migrate(ctx context.Context) error {
	var current int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return sqliteErr("migrate", err)
	}
	if current == len(sqliteMigrations) {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr("migrate", err)
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return sqliteErr("migrate", err)
	}
	if version > len(sqliteMigrations) {
		return fmt.Errorf("store: sqlite: the database has schema version %d, newer than this program's %d", version, len(sqliteMigrations))
	}
	if version == len(sqliteMigrations) {
		return nil
	}
	for _, step := range sqliteMigrations[version:] {
		for _, stmt := range step {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return sqliteErr("migrate", err)
			}
		}
	}
	// PRAGMA takes no parameters; the value is a constant of this program.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(sqliteMigrations))); err != nil {
		return sqliteErr("migrate", err)
	}
	if err := tx.Commit(); err != nil {
		return sqliteErr("migrate", err)
	}
	return nil
}

// Close closes the database. Later calls return the first call's result;
// other methods called after Close fail with ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeDelivered()
		s.closeStatements()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// sqliteErr wraps an error from the database with ErrUnavailable.
func sqliteErr(op string, err error) error {
	return fmt.Errorf("%w: sqlite: %s: %w", store.ErrUnavailable, op, err)
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Tasks.

// inTx runs fn in one transaction: all of it is written, or none. The
// transaction also deletes the delivered events MarkDelivered noted.
func (s *Store) inTx(ctx context.Context, op string, fn func(runner) error) error {
	keys := s.takeDelivered()
	err := s.inTxOnly(ctx, op, func(tx runner) error {
		if err := deleteDelivered(ctx, tx, keys); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		s.restoreDelivered(keys)
	}
	return err
}

// inTxOnly runs fn in one transaction: all of it is written, or none.
func (s *Store) inTxOnly(ctx context.Context, op string, fn func(runner) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr(op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(runner{s: s, tx: tx}); err != nil {
		if errors.Is(err, errNotWritten) || errors.Is(err, store.ErrInvalid) {
			return err
		}
		return sqliteErr(op, err)
	}
	if err := tx.Commit(); err != nil {
		return sqliteErr(op, err)
	}
	return nil
}

// sqliteQuery is a listing's SELECT: columns FROM table WHERE where, ordered
// by timeColumn and id, both descending. where and timeColumn are constants
// of this file, never input.
type sqliteQuery struct {
	columns, table, timeColumn string
	idColumn                   string // the tiebreak; "" means id
	eventIDs                   bool   // ids are event ids (DecodeEventCursor)
	where                      string // "" for every row
	args                       []any  // where's arguments
}

// text is q's SQL, with the keyset condition when afterCursor.
func (q sqliteQuery) text(afterCursor bool) string {
	idCol := q.idColumn
	if idCol == "" {
		idCol = "id"
	}
	var conds []string
	if q.where != "" {
		conds = append(conds, q.where)
	}
	if afterCursor {
		conds = append(conds, "("+q.timeColumn+", "+idCol+") < (?, ?)")
	}
	query := `SELECT ` + q.columns + ` FROM ` + q.table
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, " AND ")
	}
	return query + ` ORDER BY ` + q.timeColumn + ` DESC, ` + idCol + ` DESC LIMIT ?`
}

// sqliteList returns the page of q's rows after cursor c (keyset paging:
// the page starts right after the last row of the previous one, so rows
// added or deleted meanwhile never shift it). It reads one row more than
// the page holds to know whether another page follows.
func sqliteList[T any](ctx context.Context, db runner, op string, q sqliteQuery, limit int, c string,
	scan func(rowScanner) (T, error), key func(T) (time.Time, string)) (store.Page[T], error) {
	size, err := store.PageSize(limit)
	if err != nil {
		return store.Page[T]{}, err
	}
	decode := store.DecodeCursor
	if q.eventIDs {
		decode = store.DecodeEventCursor
	}
	after, ok, err := decode(c)
	if err != nil {
		return store.Page[T]{}, err
	}
	args := append([]any(nil), q.args...)
	if ok {
		args = append(args, micros(after.At), after.ID)
	}
	query := q.text(ok)
	args = append(args, size+1)

	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Page[T]{}, sqliteErr(op, err)
	}
	defer func() { _ = rows.Close() }()
	items := make([]T, 0, min(size+1, 16))
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return store.Page[T]{}, sqliteErr(op, err)
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return store.Page[T]{}, sqliteErr(op, err)
	}
	page := store.Page[T]{Items: items}
	if len(items) > size {
		page.Items = items[:size]
		at, id := key(page.Items[size-1])
		page.Next = store.EncodeCursor(at, id)
	}
	return page, nil
}
