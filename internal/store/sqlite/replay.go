package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

// replayDeadSQL moves one dead event back to pending (prepared at open:
// see txStatements).
const replayDeadSQL = `UPDATE outbox SET state = ?, attempts = 0, next_attempt = ?
	WHERE tenant_id = ? AND event_id = ? AND state = ? RETURNING ` + outboxColumns

// ReplayDead moves a dead event back to pending with one conditional
// UPDATE (… WHERE state = 'dead'), and writes audit in the same
// transaction; of concurrent replays of one event exactly one moves it.
func (s *Store) ReplayDead(ctx context.Context, tenantID, eventID string, next time.Time, audit *store.OutboxEvent) (store.OutboxEvent, bool, error) {
	if err := store.CheckReplay(tenantID, eventID); err != nil {
		return store.OutboxEvent{}, false, err
	}
	a, err := store.NormEvent(audit, tenantID, eventID)
	if err != nil {
		return store.OutboxEvent{}, false, err
	}
	var ev store.OutboxEvent
	err = s.inTx(ctx, "replay dead letter", func(tx runner) error {
		ev, err = scanEvent(tx.QueryRowContext(ctx, replayDeadSQL,
			store.OutboxPending, micros(store.NormTime(next)), tenantID, eventID, store.OutboxDead))
		if errors.Is(err, sql.ErrNoRows) {
			return errNotWritten
		}
		if err != nil || ev.Action == store.ActionOutboxReplay {
			return err
		}
		return insertEvent(ctx, tx, a)
	})
	switch {
	case errors.Is(err, errNotWritten):
		// Not dead: pending (replayed meanwhile) or not in the outbox.
		if err := s.flushDelivered(ctx); err != nil { // a delivered event is gone, not pending
			return store.OutboxEvent{}, false, err
		}
		ev, err = scanEvent(s.db.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE tenant_id = ? AND event_id = ?`, tenantID, eventID))
		if errors.Is(err, sql.ErrNoRows) {
			return store.OutboxEvent{}, false, store.ErrNotFound
		}
		if err != nil {
			return store.OutboxEvent{}, false, sqliteErr("replay dead letter", err)
		}
		return ev, false, nil
	case err != nil:
		return store.OutboxEvent{}, false, err
	}
	if ev.Action != store.ActionOutboxReplay {
		store.Stored(audit, a)
	}
	return ev, true, nil
}
