package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

var _ store.IdempotentTasks = (*Store)(nil)

// CreateTaskOnce creates t unless the key is held: one transaction reads
// the key and writes the task, its event and the key's record (replacing
// an expired one), so two creates with one key never both write.
func (s *Store) CreateTaskOnce(ctx context.Context, t store.Task, ev *store.OutboxEvent, idem store.Idempotency) (store.Task, *store.IdempotencyRecord, error) {
	t, err := store.NormTask(t)
	if err != nil {
		return store.Task{}, nil, err
	}
	e, err := store.NormEvent(ev, t.TenantID, t.ID)
	if err != nil {
		return store.Task{}, nil, err
	}
	rec, err := store.NormIdempotency(idem, t)
	if err != nil {
		return store.Task{}, nil, err
	}
	snapshot, err := store.EncodeTask(t)
	if err != nil {
		return store.Task{}, nil, err
	}
	var prior *store.IdempotencyRecord
	err = s.inTx(ctx, "create task", func(tx runner) error {
		held, err := scanIdempotency(tx.QueryRowContext(ctx, selectIdempotencySQL, rec.TenantID, rec.UserID, rec.Key))
		switch {
		case err == nil && held.ExpiresAt.After(rec.CreatedAt):
			prior = &held
			return nil // nothing written
		case err == nil: // expired: the key is free again
			if _, err := tx.ExecContext(ctx, deleteIdempotencySQL, rec.TenantID, rec.UserID, rec.Key); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, insertTaskSQL,
			t.TenantID, t.ID, t.Title, t.Description, boolInt(t.Completed),
			t.CreatedBy, t.CreatedByName, micros(t.CreatedAt), micros(t.UpdatedAt), t.ETag); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, e); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, insertIdempotencySQL,
			rec.TenantID, rec.UserID, rec.Key, rec.RequestHash, t.ID, snapshot, micros(rec.CreatedAt), micros(rec.ExpiresAt))
		return err
	})
	if err != nil {
		return store.Task{}, nil, err
	}
	if prior != nil {
		return store.Task{}, prior, nil
	}
	store.Stored(ev, e)
	return t, nil, nil
}

const idempotencyColumns = `tenant_id, user_id, key, request_hash, task_id, task, created_at, expires_at, status, body`

// The statements of a create with an idempotency key (prepared at open: see
// txStatements).
const (
	selectIdempotencySQL = `SELECT ` + idempotencyColumns + ` FROM idempotency
		WHERE tenant_id = ? AND user_id = ? AND key = ?`
	deleteIdempotencySQL = `DELETE FROM idempotency WHERE tenant_id = ? AND user_id = ? AND key = ?`
	insertIdempotencySQL = `INSERT INTO idempotency (` + idempotencyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, x'')`
)

func scanIdempotency(r rowScanner) (store.IdempotencyRecord, error) {
	var (
		rec              store.IdempotencyRecord
		taskID, snapshot string
		created, expires int64
	)
	if err := r.Scan(&rec.TenantID, &rec.UserID, &rec.Key, &rec.RequestHash, &taskID, &snapshot,
		&created, &expires, &rec.Status, &rec.Body); err != nil {
		return store.IdempotencyRecord{}, err
	}
	task, err := store.DecodeTask(snapshot)
	if err != nil {
		return store.IdempotencyRecord{}, err
	}
	rec.Task, rec.CreatedAt, rec.ExpiresAt = task, fromMicros(created), fromMicros(expires)
	if rec.Status == 0 {
		rec.Body = nil
	}
	return rec, nil
}

// RecordIdempotentResponse stores the response of the key's create, once.
func (s *Store) RecordIdempotentResponse(ctx context.Context, tenantID, userID, key, taskID string, status int, body []byte) error {
	if err := store.CheckResponse(status, body); err != nil {
		return err
	}
	res, err := s.run().ExecContext(ctx, `UPDATE idempotency SET status = ?, body = ?
		WHERE tenant_id = ? AND user_id = ? AND key = ? AND task_id = ? AND status = 0`,
		status, append([]byte{}, body...), tenantID, userID, key, taskID)
	if err != nil {
		return sqliteErr("record idempotent response", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqliteErr("record idempotent response", err)
	} else if n == 1 {
		return nil
	}
	var one int
	err = s.run().QueryRowContext(ctx, `SELECT 1 FROM idempotency WHERE tenant_id = ? AND user_id = ? AND key = ? AND task_id = ?`,
		tenantID, userID, key, taskID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return sqliteErr("record idempotent response", err)
	}
	return nil // recorded before: kept
}

// PurgeIdempotencyKeys deletes up to limit records expired at now.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, store.Invalidf("purge limit %d is not positive", limit)
	}
	res, err := s.run().ExecContext(ctx, `DELETE FROM idempotency WHERE rowid IN
		(SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT ?)`, micros(store.NormTime(now)), limit)
	if err != nil {
		return 0, sqliteErr("purge idempotency keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, sqliteErr("purge idempotency keys", err)
	}
	return int(n), nil
}
