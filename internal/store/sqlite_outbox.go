package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const outboxColumns = `tenant_id, event_id, action, resource_id, actor, created_at, state, attempts, next_attempt, last_error`

func insertEvent(ctx context.Context, tx *sql.Tx, e *OutboxEvent) error {
	if e == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (`+outboxColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.TenantID, e.EventID, e.Action, e.ResourceID, e.Actor, micros(e.CreatedAt), e.State, e.Attempts, micros(e.NextAttempt), e.LastError)
	return err
}

func scanEvent(r rowScanner) (OutboxEvent, error) {
	var e OutboxEvent
	var created, next int64
	if err := r.Scan(&e.TenantID, &e.EventID, &e.Action, &e.ResourceID, &e.Actor, &created, &e.State, &e.Attempts, &next, &e.LastError); err != nil {
		return OutboxEvent{}, err
	}
	e.CreatedAt, e.NextAttempt = fromMicros(created), fromMicros(next)
	return e, nil
}

// DueEvents returns pending events due at now, the longest-due first.
func (s *SQLite) DueEvents(ctx context.Context, now time.Time, limit int) ([]OutboxEvent, error) {
	limit, err := pageSize(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE state = ? AND next_attempt <= ? ORDER BY next_attempt, created_at LIMIT ?`,
		OutboxPending, micros(now), limit)
	if err != nil {
		return nil, sqliteErr("due events", err)
	}
	defer rows.Close()
	out := []OutboxEvent{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, sqliteErr("due events", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteErr("due events", err)
	}
	return out, nil
}

// CountDue counts the pending events due at now (at most MaxCountDue).
func (s *SQLite) CountDue(ctx context.Context, now time.Time) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM outbox WHERE state = ? AND next_attempt <= ? LIMIT ?)`,
		OutboxPending, micros(now), MaxCountDue).Scan(&n); err != nil {
		return 0, sqliteErr("count due events", err)
	}
	return n, nil
}

// MarkDelivered removes a delivered event from the outbox (its record is
// now the Audit Service's), whatever its state: a delivery that succeeded
// beats a concurrent one that gave up. Marking an event that is gone is no
// error.
func (s *SQLite) MarkDelivered(ctx context.Context, tenantID, eventID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE tenant_id = ? AND event_id = ?`,
		tenantID, eventID); err != nil {
		return sqliteErr("mark delivered", err)
	}
	return nil
}

// MarkFailed records a failed attempt of a pending event.
func (s *SQLite) MarkFailed(ctx context.Context, tenantID, eventID, reason string, next time.Time, dead bool) error {
	state := OutboxPending
	if dead {
		state = OutboxDead
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?, state = ?
		WHERE tenant_id = ? AND event_id = ? AND state = ?`,
		truncate(reason, maxErrorLength), micros(normTime(next)), state, tenantID, eventID, OutboxPending)
	return s.outboxWritten(ctx, "mark failed", res, err, tenantID, eventID)
}

// outboxWritten: a write that matched no pending event is fine if the event
// exists (it was settled meanwhile), ErrNotFound if it does not.
func (s *SQLite) outboxWritten(ctx context.Context, op string, res sql.Result, err error, tenantID, eventID string) error {
	if err != nil {
		return sqliteErr(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqliteErr(op, err)
	} else if n > 0 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE tenant_id = ? AND event_id = ?`, tenantID, eventID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return sqliteErr(op, err)
	}
	return nil
}

// ListOutbox pages through a tenant's events in a state, newest first.
func (s *SQLite) ListOutbox(ctx context.Context, tenantID, state string, limit int, cursor string) (Page[OutboxEvent], error) {
	if err := requireID("tenant id", tenantID); err != nil {
		return Page[OutboxEvent]{}, err
	}
	if err := validState(state); err != nil {
		return Page[OutboxEvent]{}, err
	}
	return sqliteList(ctx, s.db, "list outbox", sqliteQuery{
		columns: outboxColumns, table: "outbox", timeColumn: "created_at", idColumn: "event_id", eventIDs: true,
		where: "tenant_id = ? AND state = ?", args: []any{tenantID, state},
	}, limit, cursor, scanEvent, func(e OutboxEvent) (time.Time, string) { return e.CreatedAt, e.EventID })
}
