package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

const outboxColumns = `tenant_id, event_id, action, resource_id, actor, created_at, state, attempts, next_attempt, last_error, traceparent, tracestate`

const insertEventSQL = `INSERT INTO outbox (` + outboxColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func insertEvent(ctx context.Context, tx runner, e *store.OutboxEvent) error {
	if e == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, insertEventSQL,
		e.TenantID, e.EventID, e.Action, e.ResourceID, e.Actor, micros(e.CreatedAt), e.State, e.Attempts, micros(e.NextAttempt), e.LastError,
		e.Traceparent, e.Tracestate)
	return err
}

func scanEvent(r rowScanner) (store.OutboxEvent, error) {
	var e store.OutboxEvent
	var created, next int64
	if err := r.Scan(&e.TenantID, &e.EventID, &e.Action, &e.ResourceID, &e.Actor, &created, &e.State, &e.Attempts, &next, &e.LastError,
		&e.Traceparent, &e.Tracestate); err != nil {
		return store.OutboxEvent{}, err
	}
	e.CreatedAt, e.NextAttempt = fromMicros(created), fromMicros(next)
	return e, nil
}

const dueEventsSQL = `SELECT ` + outboxColumns + ` FROM outbox
	WHERE state = ? AND next_attempt <= ? ORDER BY next_attempt, created_at LIMIT ?`

// DueEvents returns pending events due at now, the longest-due first.
func (s *Store) DueEvents(ctx context.Context, now time.Time, limit int) ([]store.OutboxEvent, error) {
	limit, err := store.PageSize(limit)
	if err != nil {
		return nil, err
	}
	if err := s.flushDelivered(ctx); err != nil {
		return nil, err
	}
	rows, err := s.run().QueryContext(ctx, dueEventsSQL, store.OutboxPending, micros(now), limit)
	if err != nil {
		return nil, sqliteErr("due events", err)
	}
	defer rows.Close()
	out := []store.OutboxEvent{}
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
func (s *Store) CountDue(ctx context.Context, now time.Time) (int, error) {
	if err := s.flushDelivered(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := s.run().QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM outbox WHERE state = ? AND next_attempt <= ? LIMIT ?)`,
		store.OutboxPending, micros(now), store.MaxCountDue).Scan(&n); err != nil {
		return 0, sqliteErr("count due events", err)
	}
	return n, nil
}

// OutboxDepth counts pending and dead events (each up to MaxCountDue) and
// finds the oldest pending one, for a tenant (its index) or for every
// tenant ("": the due index, which leads with the state).
func (s *Store) OutboxDepth(ctx context.Context, tenantID string) (store.OutboxDepth, error) {
	if err := s.flushDelivered(ctx); err != nil {
		return store.OutboxDepth{}, err
	}
	where := "state = ?"
	if tenantID != "" {
		where = "tenant_id = ? AND state = ?"
	}
	q := `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + where + ` LIMIT ?)),
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + where + ` LIMIT ?)),
		(SELECT min(created_at) FROM outbox WHERE ` + where + `)`
	var args []any
	for _, sub := range []struct {
		state string
		limit bool
	}{{store.OutboxPending, true}, {store.OutboxDead, true}, {store.OutboxPending, false}} {
		if tenantID != "" {
			args = append(args, tenantID)
		}
		args = append(args, sub.state)
		if sub.limit {
			args = append(args, store.MaxCountDue)
		}
	}
	var d store.OutboxDepth
	var oldest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&d.Pending, &d.Dead, &oldest); err != nil {
		return store.OutboxDepth{}, sqliteErr("outbox depth", err)
	}
	if oldest.Valid {
		d.OldestPending = fromMicros(oldest.Int64)
	}
	return d, nil
}

// MarkFailed records a failed attempt of a pending event.
func (s *Store) MarkFailed(ctx context.Context, tenantID, eventID, reason string, next time.Time, dead bool) error {
	if err := s.flushDelivered(ctx); err != nil {
		return err
	}
	state := store.OutboxPending
	if dead {
		state = store.OutboxDead
	}
	res, err := s.run().ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?, state = ?
		WHERE tenant_id = ? AND event_id = ? AND state = ?`,
		store.Truncate(reason, store.MaxErrorLength), micros(store.NormTime(next)), state, tenantID, eventID, store.OutboxPending)
	return s.outboxWritten(ctx, "mark failed", res, err, tenantID, eventID)
}

// outboxWritten: a write that matched no pending event is fine if the event
// exists (it was settled meanwhile), ErrNotFound if it does not.
func (s *Store) outboxWritten(ctx context.Context, op string, res sql.Result, err error, tenantID, eventID string) error {
	if err != nil {
		return sqliteErr(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqliteErr(op, err)
	} else if n > 0 {
		return nil
	}
	var one int
	err = s.run().QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE tenant_id = ? AND event_id = ?`, tenantID, eventID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return sqliteErr(op, err)
	}
	return nil
}

// ListOutbox pages through a tenant's events in a state, newest first.
func (s *Store) ListOutbox(ctx context.Context, tenantID, state string, limit int, cursor string) (store.Page[store.OutboxEvent], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	if err := store.ValidState(state); err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	if err := s.flushDelivered(ctx); err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	return sqliteList(ctx, s.run(), "list outbox", outboxQuery(tenantID, state),
		limit, cursor, scanEvent, func(e store.OutboxEvent) (time.Time, string) { return e.CreatedAt, e.EventID })
}

func outboxQuery(tenantID, state string) sqliteQuery {
	return sqliteQuery{columns: outboxColumns, table: "outbox", timeColumn: "created_at", idColumn: "event_id", eventIDs: true,
		where: "tenant_id = ? AND state = ?", args: []any{tenantID, state}}
}
