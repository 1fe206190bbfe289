package store

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
)

// SQLite is the embedded Store: one SQLite database file, through the
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
// Every error that comes from the database (locked beyond the busy timeout,
// store closed, disk full or failing, context ended while waiting) wraps
// ErrUnavailable.
//
// A SQLite is safe for concurrent use.
type SQLite struct {
	db        *sql.DB
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLite)(nil)

// sqliteBusyTimeout is how long a statement waits for another connection's
// (another process's) lock before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 5 * time.Second

// sqliteOpenTimeout bounds opening and migrating the database.
const sqliteOpenTimeout = 30 * time.Second

// OpenSQLite opens (creating it if need be) the SQLite database at path and
// brings its schema up to date. Missing parent directories are created
// (mode 0700) and a new database file is created with mode 0600 (SQLite
// gives its -wal and -shm files the same mode). path ":memory:" opens a
// private in-memory database, for tests; it lives as long as the store.
func OpenSQLite(path string) (*SQLite, error) {
	return openSQLite(path, sqliteBusyTimeout)
}

func openSQLite(path string, busyTimeout time.Duration) (*SQLite, error) {
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
	s := &SQLite{db: db}

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
	q.Set("_journal_mode", "WAL")
	// FULL: a transaction is durable once it returns (the WAL is synced on
	// every commit), which the audit log wants.
	q.Set("_synchronous", "FULL")

	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false, fmt.Errorf("store: sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", ErrUnavailable, err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", ErrUnavailable, err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("%w: sqlite: %w", ErrUnavailable, err)
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
}

// init checks the connection settings and migrates the schema.
func (s *SQLite) init(ctx context.Context, memory bool) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return sqliteErr("open", err)
	}
	if !memory && !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("%w: sqlite: journal_mode is %q, not WAL (is the file system local?)", ErrUnavailable, mode)
	}
	return s.migrate(ctx)
}

// migrate brings the schema to the newest version, in one transaction
// (BEGIN IMMEDIATE, so concurrent openers take turns). An up-to-date
// database is only read, so opening it does not wait for other writers.
func (s *SQLite) migrate(ctx context.Context) error {
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
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// sqliteErr wraps an error from the database with ErrUnavailable.
func sqliteErr(op string, err error) error {
	return fmt.Errorf("%w: sqlite: %s: %w", ErrUnavailable, op, err)
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

const taskColumns = `tenant_id, id, title, description, completed, created_by, created_by_name, created_at, updated_at, etag`

func scanTask(r rowScanner) (Task, error) {
	var (
		t                  Task
		completed          int64
		createdAt, updated int64
	)
	if err := r.Scan(&t.TenantID, &t.ID, &t.Title, &t.Description, &completed,
		&t.CreatedBy, &t.CreatedByName, &createdAt, &updated, &t.ETag); err != nil {
		return Task{}, err
	}
	t.Completed = completed != 0
	t.CreatedAt = fromMicros(createdAt)
	t.UpdatedAt = fromMicros(updated)
	return t, nil
}

// CreateTask stores t with a new random ID and ETag and the current time
// as CreatedAt and UpdatedAt; the title is stored without surrounding white
// space. ev, when given, is stored in the same transaction. An invalid task
// (see ErrInvalid) is not stored.
func (s *SQLite) CreateTask(ctx context.Context, t Task, ev *OutboxEvent) (Task, error) {
	t, err := normTask(t)
	if err != nil {
		return Task{}, err
	}
	e, err := normEvent(ev, t.TenantID, t.ID)
	if err != nil {
		return Task{}, err
	}
	err = s.inTx(ctx, "create task", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.TenantID, t.ID, t.Title, t.Description, boolInt(t.Completed),
			t.CreatedBy, t.CreatedByName, micros(t.CreatedAt), micros(t.UpdatedAt), t.ETag); err != nil {
			return err
		}
		return insertEvent(ctx, tx, e)
	})
	if err != nil {
		return Task{}, err
	}
	return t, nil
}

// GetTask returns the tenant's task id, or ErrNotFound.
func (s *SQLite) GetTask(ctx context.Context, tenantID, id string) (Task, error) {
	t, err := scanTask(s.db.QueryRowContext(ctx,
		`SELECT `+taskColumns+` FROM tasks WHERE tenant_id = ? AND id = ?`, tenantID, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Task{}, ErrNotFound
	case err != nil:
		return Task{}, sqliteErr("get task", err)
	}
	return t, nil
}

// ListTasks pages through the tenant's tasks, newest first (CreatedAt
// descending, then ID descending). limit 0 means DefaultPageSize and is
// capped at MaxPageSize.
func (s *SQLite) ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (Page[Task], error) {
	if err := requireID("tenant id", tenantID); err != nil {
		return Page[Task]{}, err
	}
	return sqliteList(ctx, s.db, "list tasks", sqliteQuery{
		columns: taskColumns, table: "tasks", timeColumn: "created_at",
		where: "tenant_id = ?", args: []any{tenantID},
	}, limit, cursor, scanTask, func(t Task) (time.Time, string) { return t.CreatedAt, t.ID })
}

// errNotWritten marks a conditional write that matched no row.
var errNotWritten = errors.New("no row matched")

// UpdateTask applies p in one conditional UPDATE, so a concurrent write
// either lands before it (and an ifMatch naming the older ETag fails) or
// after it; ev is stored in the same transaction.
func (s *SQLite) UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p TaskPatch, ev *OutboxEvent) (Task, error) {
	p, err := normPatch(p)
	if err != nil {
		return Task{}, err
	}
	e, err := normEvent(ev, tenantID, id)
	if err != nil {
		return Task{}, err
	}
	var title, completed any // NULL keeps the column
	if p.Title != nil {
		title = *p.Title
	}
	if p.Completed != nil {
		completed = boolInt(*p.Completed)
	}
	var t Task
	err = s.inTx(ctx, "update task", func(tx *sql.Tx) error {
		// updated_at never goes backwards, even if the clock does.
		var err error
		t, err = scanTask(tx.QueryRowContext(ctx, `UPDATE tasks SET
				title = coalesce(?, title),
				completed = coalesce(?, completed),
				etag = ?,
				updated_at = max(?, updated_at)
			WHERE tenant_id = ? AND id = ? AND (? = '' OR etag = ?)
			RETURNING `+taskColumns,
			title, completed, newETag(), micros(now()), tenantID, id, ifMatch, ifMatch))
		if errors.Is(err, sql.ErrNoRows) {
			return errNotWritten
		}
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, e)
	})
	if errors.Is(err, errNotWritten) {
		return Task{}, s.whyNotWritten(ctx, "update task", tenantID, id, ifMatch)
	}
	if err != nil {
		return Task{}, err
	}
	return t, nil
}

// DeleteTask deletes the tenant's task if ifMatch is "" or its ETag; ev is
// stored in the same transaction.
func (s *SQLite) DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *OutboxEvent) error {
	e, err := normEvent(ev, tenantID, id)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "delete task", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM tasks WHERE tenant_id = ? AND id = ? AND (? = '' OR etag = ?)`,
			tenantID, id, ifMatch, ifMatch)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNotWritten
		}
		return insertEvent(ctx, tx, e)
	})
	if errors.Is(err, errNotWritten) {
		return s.whyNotWritten(ctx, "delete task", tenantID, id, ifMatch)
	}
	return err
}

// inTx runs fn in one transaction: all of it is written, or none.
func (s *SQLite) inTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr(op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		if errors.Is(err, errNotWritten) || errors.Is(err, ErrInvalid) {
			return err
		}
		return sqliteErr(op, err)
	}
	if err := tx.Commit(); err != nil {
		return sqliteErr(op, err)
	}
	return nil
}

// whyNotWritten tells why a conditional write matched no row: the task is
// missing (ErrNotFound) or its ETag is not ifMatch (ErrPreconditionFailed).
func (s *SQLite) whyNotWritten(ctx context.Context, op, tenantID, id, ifMatch string) error {
	if ifMatch == "" {
		return ErrNotFound
	}
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM tasks WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return sqliteErr(op, err)
	}
	return ErrPreconditionFailed
}

// Notifications.

const notificationColumns = `id, event, task_title, to_name, email, user_oid, tenant_id, caller_app, ts`

func scanNotification(r rowScanner) (Notification, error) {
	var (
		n  Notification
		ts int64
	)
	if err := r.Scan(&n.ID, &n.Event, &n.TaskTitle, &n.To, &n.Email, &n.UserOID, &n.TenantID, &n.CallerApp, &ts); err != nil {
		return Notification{}, err
	}
	n.Timestamp = fromMicros(ts)
	return n, nil
}

// AddNotification stores n with a new random ID (any ID given is
// replaced) and, if n.Timestamp is zero, the current time. TenantID and
// UserOID are required.
func (s *SQLite) AddNotification(ctx context.Context, n Notification) (Notification, error) {
	if err := requireID("tenant id", n.TenantID); err != nil {
		return Notification{}, err
	}
	if err := requireID("user oid", n.UserOID); err != nil {
		return Notification{}, err
	}
	ts, err := normTimeOrNow("timestamp", n.Timestamp)
	if err != nil {
		return Notification{}, err
	}
	n.ID, n.Timestamp = newID(), ts
	_, err = s.db.ExecContext(ctx, `INSERT INTO notifications (`+notificationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.Event, n.TaskTitle, n.To, n.Email, n.UserOID, n.TenantID, n.CallerApp, micros(n.Timestamp))
	if err != nil {
		return Notification{}, sqliteErr("add notification", err)
	}
	return n, nil
}

// ListNotifications pages through the user's notifications in the tenant,
// newest first (Timestamp descending, then ID descending).
func (s *SQLite) ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (Page[Notification], error) {
	if err := requireID("tenant id", tenantID); err != nil {
		return Page[Notification]{}, err
	}
	if err := requireID("user oid", userOID); err != nil {
		return Page[Notification]{}, err
	}
	return sqliteList(ctx, s.db, "list notifications", sqliteQuery{
		columns: notificationColumns, table: "notifications", timeColumn: "ts",
		where: "tenant_id = ? AND user_oid = ?", args: []any{tenantID, userOID},
	}, limit, cursor, scanNotification, func(n Notification) (time.Time, string) { return n.Timestamp, n.ID })
}

// Audit log.

const auditColumns = `id, event_id, action, resource_id, actor, tenant_id, caller_app, ts`

func scanAudit(r rowScanner) (AuditEntry, error) {
	var (
		e  AuditEntry
		ts int64
	)
	if err := r.Scan(&e.ID, &e.EventID, &e.Action, &e.ResourceID, &e.Actor, &e.TenantID, &e.CallerApp, &ts); err != nil {
		return AuditEntry{}, err
	}
	e.Timestamp = fromMicros(ts)
	return e, nil
}

// AppendAudit stores e with a new random ID (any ID given is replaced)
// and, if e.Timestamp is zero, the current time, unless an entry with
// e.EventID is stored already: then it returns that entry and created
// false. The unique index on event_id makes that hold for concurrent
// appends too (from this process or another). EventID and TenantID are
// required. An EventID that another tenant's entry holds is refused
// (ErrInvalid) rather than answered with that tenant's entry.
func (s *SQLite) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, bool, error) {
	if err := requireID("event id", e.EventID); err != nil {
		return AuditEntry{}, false, err
	}
	if err := requireID("tenant id", e.TenantID); err != nil {
		return AuditEntry{}, false, err
	}
	ts, err := normTimeOrNow("timestamp", e.Timestamp)
	if err != nil {
		return AuditEntry{}, false, err
	}
	e.ID, e.Timestamp = newID(), ts
	res, err := s.db.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO NOTHING`,
		e.ID, e.EventID, e.Action, e.ResourceID, e.Actor, e.TenantID, e.CallerApp, micros(e.Timestamp))
	if err != nil {
		return AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	if n == 1 {
		return e, true, nil
	}
	// Audit entries are never deleted, so the one in the way is still there.
	stored, err := scanAudit(s.db.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE event_id = ?`, e.EventID))
	if err != nil {
		return AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	if stored.TenantID != e.TenantID {
		return AuditEntry{}, false, invalidf("event id %q is another tenant's", e.EventID)
	}
	return stored, false, nil
}

// ListAudit pages through the tenant's audit entries, or every tenant's if
// tenantID is "", newest first (Timestamp descending, then ID descending).
func (s *SQLite) ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (Page[AuditEntry], error) {
	q := sqliteQuery{columns: auditColumns, table: "audit", timeColumn: "ts"}
	if tenantID != "" {
		q.where, q.args = "tenant_id = ?", []any{tenantID}
	}
	return sqliteList(ctx, s.db, "list audit entries", q, limit, cursor, scanAudit,
		func(e AuditEntry) (time.Time, string) { return e.Timestamp, e.ID })
}

// Listing.

// sqliteQuery is a listing's SELECT: columns FROM table WHERE where, ordered
// by timeColumn and id, both descending. where and timeColumn are constants
// of this file, never input.
type sqliteQuery struct {
	columns, table, timeColumn string
	idColumn                   string // the tiebreak; "" means id
	eventIDs                   bool   // ids are event ids (decodeEventCursor)
	where                      string // "" for every row
	args                       []any  // where's arguments
}

// sqliteList returns the page of q's rows after cursor c (keyset paging:
// the page starts right after the last row of the previous one, so rows
// added or deleted meanwhile never shift it). It reads one row more than
// the page holds to know whether another page follows.
func sqliteList[T any](ctx context.Context, db *sql.DB, op string, q sqliteQuery, limit int, c string,
	scan func(rowScanner) (T, error), key func(T) (time.Time, string)) (Page[T], error) {
	size, err := pageSize(limit)
	if err != nil {
		return Page[T]{}, err
	}
	decode := decodeCursor
	if q.eventIDs {
		decode = decodeEventCursor
	}
	after, ok, err := decode(c)
	if err != nil {
		return Page[T]{}, err
	}
	idCol := q.idColumn
	if idCol == "" {
		idCol = "id"
	}
	var conds []string
	args := append([]any(nil), q.args...)
	if q.where != "" {
		conds = append(conds, q.where)
	}
	if ok {
		conds = append(conds, "("+q.timeColumn+", "+idCol+") < (?, ?)")
		args = append(args, micros(after.at), after.id)
	}
	query := `SELECT ` + q.columns + ` FROM ` + q.table
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, " AND ")
	}
	query += ` ORDER BY ` + q.timeColumn + ` DESC, ` + idCol + ` DESC LIMIT ?`
	args = append(args, size+1)

	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return Page[T]{}, sqliteErr(op, err)
	}
	defer func() { _ = rows.Close() }()
	items := make([]T, 0, min(size+1, 16))
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return Page[T]{}, sqliteErr(op, err)
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, sqliteErr(op, err)
	}
	page := Page[T]{Items: items}
	if len(items) > size {
		page.Items = items[:size]
		at, id := key(page.Items[size-1])
		page.Next = encodeCursor(at, id)
	}
	return page, nil
}
