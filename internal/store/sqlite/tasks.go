package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

func scanTask(r rowScanner) (store.Task, error) {
	var (
		t                  store.Task
		completed          int64
		createdAt, updated int64
	)
	if err := r.Scan(&t.TenantID, &t.ID, &t.Title, &t.Description, &completed,
		&t.CreatedBy, &t.CreatedByName, &createdAt, &updated, &t.ETag); err != nil {
		return store.Task{}, err
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
func (s *Store) CreateTask(ctx context.Context, t store.Task, ev *store.OutboxEvent) (store.Task, error) {
	t, err := store.NormTask(t)
	if err != nil {
		return store.Task{}, err
	}
	e, err := store.NormEvent(ev, t.TenantID, t.ID)
	if err != nil {
		return store.Task{}, err
	}
	err = s.inTx(ctx, "create task", func(tx runner) error {
		if _, err := tx.ExecContext(ctx, insertTaskSQL,
			t.TenantID, t.ID, t.Title, t.Description, boolInt(t.Completed),
			t.CreatedBy, t.CreatedByName, micros(t.CreatedAt), micros(t.UpdatedAt), t.ETag); err != nil {
			return err
		}
		return insertEvent(ctx, tx, e)
	})
	if err != nil {
		return store.Task{}, err
	}
	store.Stored(ev, e)
	return t, nil
}

// GetTask returns the tenant's task id, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, tenantID, id string) (store.Task, error) {
	t, err := scanTask(s.run().QueryRowContext(ctx,
		`SELECT `+taskColumns+` FROM tasks WHERE tenant_id = ? AND id = ?`, tenantID, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Task{}, store.ErrNotFound
	case err != nil:
		return store.Task{}, sqliteErr("get task", err)
	}
	return t, nil
}

// ListTasks pages through the tenant's tasks, newest first (CreatedAt
// descending, then ID descending). limit 0 means DefaultPageSize and is
// capped at MaxPageSize.
func (s *Store) ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (store.Page[store.Task], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.Task]{}, err
	}
	return sqliteList(ctx, s.run(), "list tasks", tasksQuery(tenantID),
		limit, cursor, scanTask, func(t store.Task) (time.Time, string) { return t.CreatedAt, t.ID })
}

func tasksQuery(tenantID string) sqliteQuery {
	return sqliteQuery{columns: taskColumns, table: "tasks", timeColumn: "created_at",
		where: "tenant_id = ?", args: []any{tenantID}}
}

// UpdateTask applies p in one conditional UPDATE, so a concurrent write
// either lands before it (and an ifMatch naming the older ETag fails) or
// after it; ev is stored in the same transaction.
func (s *Store) UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p store.TaskPatch, ev *store.OutboxEvent) (store.Task, error) {
	p, err := store.NormPatch(p)
	if err != nil {
		return store.Task{}, err
	}
	e, err := store.NormEvent(ev, tenantID, id)
	if err != nil {
		return store.Task{}, err
	}
	var title, completed any // NULL keeps the column
	if p.Title != nil {
		title = *p.Title
	}
	if p.Completed != nil {
		completed = boolInt(*p.Completed)
	}
	var t store.Task
	err = s.inTx(ctx, "update task", func(tx runner) error {
		// updated_at never goes backwards, even if the clock does.
		var err error
		t, err = scanTask(tx.QueryRowContext(ctx, updateTaskSQL,
			title, completed, store.NewETag(), micros(store.Now()), tenantID, id, ifMatch, ifMatch))
		if errors.Is(err, sql.ErrNoRows) {
			return errNotWritten
		}
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, e)
	})
	if errors.Is(err, errNotWritten) {
		return store.Task{}, s.whyNotWritten(ctx, "update task", tenantID, id, ifMatch)
	}
	if err != nil {
		return store.Task{}, err
	}
	store.Stored(ev, e)
	return t, nil
}

// DeleteTask deletes the tenant's task if ifMatch is "" or its ETag; ev is
// stored in the same transaction.
func (s *Store) DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *store.OutboxEvent) error {
	e, err := store.NormEvent(ev, tenantID, id)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "delete task", func(tx runner) error {
		res, err := tx.ExecContext(ctx, deleteTaskSQL, tenantID, id, ifMatch, ifMatch)
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
	if err == nil {
		store.Stored(ev, e)
	}
	return err
}

// whyNotWritten tells why a conditional write matched no row: the task is
// missing (ErrNotFound) or its ETag is not ifMatch (ErrPreconditionFailed).
func (s *Store) whyNotWritten(ctx context.Context, op, tenantID, id, ifMatch string) error {
	if ifMatch == "" {
		return store.ErrNotFound
	}
	var one int
	err := s.run().QueryRowContext(ctx, `SELECT 1 FROM tasks WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return sqliteErr(op, err)
	}
	return store.ErrPreconditionFailed
}

// Notifications.

const taskColumns = `tenant_id, id, title, description, completed, created_by, created_by_name, created_at, updated_at, etag`

// The statements of task writes (prepared at open: see txStatements).
const (
	insertTaskSQL = `INSERT INTO tasks (` + taskColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	updateTaskSQL = `UPDATE tasks SET
			title = coalesce(?, title),
			completed = coalesce(?, completed),
			etag = ?,
			updated_at = max(?, updated_at)
		WHERE tenant_id = ? AND id = ? AND (? = '' OR etag = ?)
		RETURNING ` + taskColumns
	deleteTaskSQL = `DELETE FROM tasks WHERE tenant_id = ? AND id = ? AND (? = '' OR etag = ?)`
)

// errNotWritten marks a conditional write that matched no row.
var errNotWritten = errors.New("no row matched")
