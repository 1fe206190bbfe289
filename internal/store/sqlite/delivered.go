package sqlite

import (
	"context"
	"sync"
	"time"
)

// Delivered events leave the outbox lazily. MarkDelivered notes the event,
// and its row is deleted in the next task write's transaction, which
// writes the outbox's pages anyway; or, when no write comes within
// deliveredFlushDelay, in a transaction of its own. Before, every create
// committed twice (the task with its event, then the event's delete),
// and the second commit wrote the outbox's four b-tree pages to the WAL
// again (make bench-load: docs/performance.md).
//
// Nothing is lost by it: the event's row was committed with the task, and
// the Audit Service already has the event. A delete lost to a crash (the
// note lives in memory) leaves the event pending: the sweep delivers it
// again once its next attempt is due, and the Audit Service keeps one
// entry per event id. Every read of the outbox (DueEvents, CountDue,
// ListOutbox, MarkFailed) first deletes what is noted, so this store never
// shows a delivered event as pending.

// maxDeliveredNotes bounds the delivered events noted and not yet deleted;
// at the bound MarkDelivered deletes them at once.
const maxDeliveredNotes = 256

// deliveredFlushDelay is how long a noted event waits for a task write
// before its delete gets a transaction of its own.
const deliveredFlushDelay = time.Second

// deliveredFlushTimeout bounds that transaction.
const deliveredFlushTimeout = 5 * time.Second

// deleteDeliveredSQL deletes one delivered event (prepared at open: see
// txStatements).
const deleteDeliveredSQL = `DELETE FROM outbox WHERE tenant_id = ? AND event_id = ?`

type eventKey struct{ tenantID, eventID string }

// deliveredNotes are the delivered events whose rows are still to delete.
type deliveredNotes struct {
	mu     sync.Mutex
	keys   []eventKey
	timer  *time.Timer   // the pending flush, nil if none
	delay  time.Duration // deliveredFlushDelay; tests change it
	closed bool
}

// MarkDelivered notes that the Audit Service has the event; its row leaves
// the outbox with the next task write, within deliveredFlushDelay, or
// before the next read of the outbox, whichever comes first.
func (s *Store) MarkDelivered(ctx context.Context, tenantID, eventID string) error {
	key := eventKey{tenantID, eventID}
	n := &s.delivered
	n.mu.Lock()
	if !n.closed && len(n.keys) >= maxDeliveredNotes {
		n.mu.Unlock()
		if err := s.flushDelivered(ctx); err != nil {
			return err // not noted: the event stays pending, and is delivered again
		}
		n.mu.Lock()
	}
	if n.closed {
		n.mu.Unlock()
		return s.deleteEvents(ctx, []eventKey{key})
	}
	n.keys = append(n.keys, key)
	if n.timer == nil {
		n.timer = time.AfterFunc(n.delay, s.flushDeliveredLater)
	}
	n.mu.Unlock()
	return nil
}

// takeDelivered empties the notes and returns what they held.
func (s *Store) takeDelivered() []eventKey {
	n := &s.delivered
	n.mu.Lock()
	defer n.mu.Unlock()
	keys := n.keys
	n.keys = nil
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	return keys
}

// restoreDelivered notes keys again: their delete did not commit.
func (s *Store) restoreDelivered(keys []eventKey) {
	if len(keys) == 0 {
		return
	}
	n := &s.delivered
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keys = append(keys, n.keys...)
	if n.timer == nil && !n.closed {
		n.timer = time.AfterFunc(n.delay, s.flushDeliveredLater)
	}
}

// flushDelivered deletes the noted events in one transaction.
func (s *Store) flushDelivered(ctx context.Context) error {
	keys := s.takeDelivered()
	if len(keys) == 0 {
		return nil
	}
	if err := s.deleteEvents(ctx, keys); err != nil {
		s.restoreDelivered(keys)
		return err
	}
	return nil
}

func (s *Store) deleteEvents(ctx context.Context, keys []eventKey) error {
	return s.inTxOnly(ctx, "mark delivered", func(tx runner) error { return deleteDelivered(ctx, tx, keys) })
}

// flushDeliveredLater is the timer's flush. A failure keeps the notes for
// the next write or read of the outbox.
func (s *Store) flushDeliveredLater() {
	ctx, cancel := context.WithTimeout(context.Background(), deliveredFlushTimeout)
	defer cancel()
	_ = s.flushDelivered(ctx)
}

// deleteDelivered deletes keys' events in tx.
func deleteDelivered(ctx context.Context, tx runner, keys []eventKey) error {
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, deleteDeliveredSQL, k.tenantID, k.eventID); err != nil {
			return err
		}
	}
	return nil
}

// closeDelivered deletes what is noted, and has later MarkDelivered calls
// delete at once.
func (s *Store) closeDelivered() {
	ctx, cancel := context.WithTimeout(context.Background(), deliveredFlushTimeout)
	defer cancel()
	s.delivered.mu.Lock()
	s.delivered.closed = true
	s.delivered.mu.Unlock()
	_ = s.flushDelivered(ctx)
}
