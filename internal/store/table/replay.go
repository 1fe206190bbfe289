package table

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
)

// ReplayDead moves a dead event back to pending: it reads the row, and
// replaces it on the condition that it is still the row read (If-Match its
// ETag), in one entity-group transaction with audit (both rows are in the
// tenant's partition of the tasks table). Of concurrent replays of one
// event exactly one moves it; the others read it pending.
func (s *Store) ReplayDead(ctx context.Context, tenantID, eventID string, next time.Time, audit *store.OutboxEvent) (store.OutboxEvent, bool, error) {
	if err := store.CheckReplay(tenantID, eventID); err != nil {
		return store.OutboxEvent{}, false, err
	}
	a, err := store.NormEvent(audit, tenantID, eventID)
	if err != nil {
		return store.OutboxEvent{}, false, err
	}
	auditActions, err := outboxAction(a)
	if err != nil {
		return store.OutboxEvent{}, false, err
	}
	for attempt := range tableMaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, "replay dead letter", attempt); err != nil {
				return store.OutboxEvent{}, false, err
			}
		}
		o, etag, err := s.readEvent(ctx, "replay dead letter", tenantID, eventID)
		if err != nil {
			return store.OutboxEvent{}, false, err
		}
		if o.State != store.OutboxDead {
			return o.event(), false, nil
		}
		o.State, o.Attempts, o.NextAttempt = store.OutboxPending, 0, micros(store.NormTime(next))
		b, err := marshalEntity(o)
		if err != nil {
			return store.OutboxEvent{}, false, err
		}
		actions := []aztables.TransactionAction{{ActionType: aztables.TransactionTypeUpdateReplace, Entity: b, IfMatch: &etag}}
		audited := o.Action != store.ActionOutboxReplay
		if audited {
			actions = append(actions, auditActions...)
		}
		_, err = s.tasks.SubmitTransaction(ctx, actions, nil)
		switch {
		case err == nil:
			if audited {
				store.Stored(audit, a)
			}
			return o.event(), true, nil
		case !hasStatus(err, http.StatusPreconditionFailed) && !hasStatus(err, http.StatusNotFound):
			return store.OutboxEvent{}, false, tableErr("replay dead letter", err)
		}
		// Changed or delivered meanwhile: read again.
	}
	return store.OutboxEvent{}, false, fmt.Errorf("%w: table: replay dead letter: %d attempts lost to concurrent writes", store.ErrUnavailable, tableMaxAttempts)
}
