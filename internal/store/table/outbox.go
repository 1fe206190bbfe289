package table

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
)

// Outbox rows live in the tasks table, in the tenant's partition, so a task
// write and its event are one entity-group transaction:
// PartitionKey tenant, RowKey "o|" + the escaped event id.
const (
	outboxRowPrefix = "o|"
	// maxOutboxScan bounds the rows one DueEvents or ListOutbox reads.
	maxOutboxScan = 10000
)

type outboxEntity struct {
	PartitionKey    string
	RowKey          string
	TenantID        string
	EventID         string
	Action          string
	ResourceID      string
	Actor           string
	CreatedAt       int64  `json:",string"`
	CreatedAtType   string `json:"CreatedAt@odata.type,omitempty"`
	State           string
	Attempts        int
	NextAttempt     int64  `json:",string"`
	NextAttemptType string `json:"NextAttempt@odata.type,omitempty"`
	LastError       string
	Traceparent     string `json:",omitempty"`
	Tracestate      string `json:",omitempty"`
}

func outboxRowKey(eventID string) string { return outboxRowPrefix + tableKey(eventID) }

func newOutboxEntity(e store.OutboxEvent) outboxEntity {
	return outboxEntity{
		PartitionKey: tableKey(e.TenantID), RowKey: outboxRowKey(e.EventID),
		TenantID: e.TenantID, EventID: e.EventID, Action: e.Action, ResourceID: e.ResourceID, Actor: e.Actor,
		CreatedAt: micros(e.CreatedAt), CreatedAtType: edmInt64, State: e.State, Attempts: e.Attempts,
		NextAttempt: micros(e.NextAttempt), NextAttemptType: edmInt64, LastError: e.LastError,
		Traceparent: e.Traceparent, Tracestate: e.Tracestate,
	}
}

func (o outboxEntity) event() store.OutboxEvent {
	return store.OutboxEvent{EventID: o.EventID, TenantID: o.TenantID, Action: o.Action, ResourceID: o.ResourceID, Actor: o.Actor,
		CreatedAt: fromMicros(o.CreatedAt), State: o.State, Attempts: o.Attempts, NextAttempt: fromMicros(o.NextAttempt), LastError: o.LastError,
		Traceparent: o.Traceparent, Tracestate: o.Tracestate}
}

// outboxAction is the transaction action adding e, or none for nil.
func outboxAction(e *store.OutboxEvent) ([]aztables.TransactionAction, error) {
	if e == nil {
		return nil, nil
	}
	if err := tableCheckUTF8("event id", e.EventID, "action", e.Action, "actor", e.Actor); err != nil {
		return nil, err
	}
	b, err := marshalEntity(newOutboxEntity(*e))
	if err != nil {
		return nil, err
	}
	return []aztables.TransactionAction{{ActionType: aztables.TransactionTypeAdd, Entity: b}}, nil
}

// scanOutbox reads the outbox rows filter selects (at most maxOutboxScan).
func (s *Store) scanOutbox(ctx context.Context, op, filter string) ([]store.OutboxEvent, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	filter = fmt.Sprintf("RowKey ge '%s' and RowKey lt 'o}' and (%s)", outboxRowPrefix, filter)
	pager := s.tasks.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []store.OutboxEvent
	for pager.More() && len(out) < maxOutboxScan {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return nil, tableErr(op, err)
		}
		for _, raw := range resp.Entities {
			var o outboxEntity
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
			}
			out = append(out, o.event())
		}
	}
	return out, nil
}

// DueEvents returns pending events due at now, the longest-due first. It
// scans every tenant's partition (a filtered cross-partition query).
func (s *Store) DueEvents(ctx context.Context, now time.Time, limit int) ([]store.OutboxEvent, error) {
	limit, err := store.PageSize(limit)
	if err != nil {
		return nil, err
	}
	evs, err := s.scanOutbox(ctx, "due events", fmt.Sprintf("State eq '%s' and NextAttempt le %dL", store.OutboxPending, micros(now)))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(evs, func(a, b store.OutboxEvent) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	return evs[:min(limit, len(evs))], nil
}

// CountDue counts the pending events due at now, scanning every tenant's
// (at most MaxCountDue).
func (s *Store) CountDue(ctx context.Context, now time.Time) (int, error) {
	evs, err := s.scanOutbox(ctx, "count due events", fmt.Sprintf("State eq '%s' and NextAttempt le %dL", store.OutboxPending, micros(now)))
	return min(len(evs), store.MaxCountDue), err
}

// OutboxDepth counts pending and dead events and finds the oldest pending
// one: a read of the tenant's partition, or for every tenant ("") a
// filtered cross-partition scan of the outbox rows (at most maxOutboxScan,
// so the counts stop at MaxCountDue).
func (s *Store) OutboxDepth(ctx context.Context, tenantID string) (store.OutboxDepth, error) {
	filter := fmt.Sprintf("State eq '%s' or State eq '%s'", store.OutboxPending, store.OutboxDead)
	if tenantID != "" {
		filter = fmt.Sprintf("PartitionKey eq '%s' and (%s)", odataQuote(tableKey(tenantID)), filter)
	}
	evs, err := s.scanOutbox(ctx, "outbox depth", filter)
	if err != nil {
		return store.OutboxDepth{}, err
	}
	var d store.OutboxDepth
	for _, e := range evs {
		if e.TenantID != tenantID && tenantID != "" {
			continue // not this tenant's row, as every read checks
		}
		switch e.State {
		case store.OutboxDead:
			d.Dead++
		case store.OutboxPending:
			d.Pending++
			if d.OldestPending.IsZero() || e.CreatedAt.Before(d.OldestPending) {
				d.OldestPending = e.CreatedAt
			}
		}
	}
	d.Pending, d.Dead = min(d.Pending, store.MaxCountDue), min(d.Dead, store.MaxCountDue)
	return d, nil
}

func (s *Store) readEvent(ctx context.Context, op, tenantID, eventID string) (outboxEntity, azcore.ETag, error) {
	if err := s.checkOpen(); err != nil {
		return outboxEntity{}, "", err
	}
	resp, err := s.tasks.GetEntity(ctx, tableKey(tenantID), outboxRowKey(eventID), nil)
	if err != nil {
		if hasStatus(err, http.StatusNotFound) {
			return outboxEntity{}, "", store.ErrNotFound
		}
		return outboxEntity{}, "", tableErr(op, err)
	}
	var o outboxEntity
	if err := json.Unmarshal(resp.Value, &o); err != nil {
		return outboxEntity{}, "", fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
	}
	if o.TenantID != tenantID || o.EventID != eventID {
		return outboxEntity{}, "", store.ErrNotFound
	}
	return o, resp.ETag, nil
}

// MarkDelivered deletes the event's row, whatever its state.
func (s *Store) MarkDelivered(ctx context.Context, tenantID, eventID string) error {
	for attempt := range tableMaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, "mark delivered", attempt); err != nil {
				return err
			}
		}
		o, etag, err := s.readEvent(ctx, "mark delivered", tenantID, eventID)
		if err == store.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = s.tasks.DeleteEntity(ctx, o.PartitionKey, o.RowKey, &aztables.DeleteEntityOptions{IfMatch: &etag})
		switch {
		case err == nil, hasStatus(err, http.StatusNotFound):
			return nil
		case !hasStatus(err, http.StatusPreconditionFailed):
			return tableErr("mark delivered", err)
		}
	}
	return fmt.Errorf("%w: table: mark delivered: %d attempts lost to concurrent writes", store.ErrUnavailable, tableMaxAttempts)
}

// MarkFailed records a failed attempt of a pending event.
func (s *Store) MarkFailed(ctx context.Context, tenantID, eventID, reason string, next time.Time, dead bool) error {
	for attempt := range tableMaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, "mark failed", attempt); err != nil {
				return err
			}
		}
		o, etag, err := s.readEvent(ctx, "mark failed", tenantID, eventID)
		if err != nil {
			return err
		}
		if o.State != store.OutboxPending {
			return nil
		}
		o.Attempts++
		o.LastError = store.Truncate(reason, store.MaxErrorLength)
		o.NextAttempt = micros(store.NormTime(next))
		if dead {
			o.State = store.OutboxDead
		}
		b, err := marshalEntity(o)
		if err != nil {
			return err
		}
		_, err = s.tasks.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		switch {
		case err == nil:
			return nil
		case hasStatus(err, http.StatusNotFound):
			return store.ErrNotFound // delivered meanwhile
		case !hasStatus(err, http.StatusPreconditionFailed):
			return tableErr("mark failed", err)
		}
	}
	return fmt.Errorf("%w: table: mark failed: %d attempts lost to concurrent writes", store.ErrUnavailable, tableMaxAttempts)
}

// ListOutbox pages through a tenant's events in a state, newest first. It
// reads the tenant's outbox rows in that state (at most maxOutboxScan) and
// pages them in memory: the outbox holds only what is still owed.
func (s *Store) ListOutbox(ctx context.Context, tenantID, state string, limit int, cursor string) (store.Page[store.OutboxEvent], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	if err := store.ValidState(state); err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	size, err := store.PageSize(limit)
	if err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	after, ok, err := store.DecodeEventCursor(cursor)
	if err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	evs, err := s.scanOutbox(ctx, "list outbox", fmt.Sprintf("PartitionKey eq '%s' and State eq '%s'", odataQuote(tableKey(tenantID)), state))
	if err != nil {
		return store.Page[store.OutboxEvent]{}, err
	}
	newestFirst := func(a, b store.OutboxEvent) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		switch {
		case a.EventID > b.EventID:
			return -1
		case a.EventID < b.EventID:
			return 1
		}
		return 0
	}
	slices.SortFunc(evs, newestFirst)
	items := []store.OutboxEvent{}
	for _, e := range evs {
		if ok && newestFirst(store.OutboxEvent{CreatedAt: after.At, EventID: after.ID}, e) >= 0 {
			continue // not after the cursor
		}
		items = append(items, e)
	}
	page := store.Page[store.OutboxEvent]{Items: items}
	if len(items) > size {
		page.Items = items[:size]
		last := page.Items[size-1]
		page.Next = store.EncodeCursor(last.CreatedAt, last.EventID)
	}
	return page, nil
}
