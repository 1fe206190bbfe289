package table

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
)

// Idempotency records live in the tasks table, in the tenant's partition,
// so a create, its event and its key are one entity-group transaction:
// PartitionKey tenant, RowKey "k|" + the key form of the user id + "|" +
// the key form of the key (neither holds '|').
const idempotencyRowPrefix = "k|"

var _ store.IdempotentTasks = (*Store)(nil)

type idempotencyEntity struct {
	PartitionKey  string
	RowKey        string
	TenantID      string
	UserID        string
	Key           string
	RequestHash   string
	TaskID        string
	Task          string // the task as created, JSON
	CreatedAt     int64  `json:",string"`
	CreatedAtType string `json:"CreatedAt@odata.type,omitempty"`
	ExpiresAt     int64  `json:",string"`
	ExpiresAtType string `json:"ExpiresAt@odata.type,omitempty"`
	Status        int
	Body          string
}

func idempotencyRowKey(userID, key string) string {
	return idempotencyRowPrefix + tableKey(userID) + "|" + tableKey(key)
}

func (e idempotencyEntity) record() (store.IdempotencyRecord, error) {
	task, err := store.DecodeTask(e.Task)
	if err != nil {
		return store.IdempotencyRecord{}, err
	}
	rec := store.IdempotencyRecord{TenantID: e.TenantID, UserID: e.UserID, Key: e.Key, RequestHash: e.RequestHash,
		Task: task, CreatedAt: fromMicros(e.CreatedAt), ExpiresAt: fromMicros(e.ExpiresAt), Status: e.Status}
	if e.Status != 0 {
		rec.Body = []byte(e.Body)
	}
	return rec, nil
}

// CreateTaskOnce creates t unless the key is held. The key's row is added
// (or, when it holds an expired record, replaced on the condition of the
// service ETag it was read with) in the transaction that adds the task's
// rows and its event: a concurrent create with the key makes it fail as a
// whole, and the loser reads the winner's record.
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
	actions, err := s.createActions(t, e, rec)
	if err != nil {
		return store.Task{}, nil, err
	}
	const op = "create task"
	var replace *azcore.ETag // the expired record's service ETag, when replacing it
	for attempt := range tableMaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, op, attempt); err != nil {
				return store.Task{}, nil, err
			}
		}
		keyAction, err := idempotencyAction(t, rec, replace)
		if err != nil {
			return store.Task{}, nil, err
		}
		_, err = s.tasks.SubmitTransaction(ctx, append(actions, keyAction), nil)
		if err == nil {
			store.Stored(ev, e)
			return t, nil, nil
		}
		if !hasStatus(err, http.StatusConflict) && !hasStatus(err, http.StatusPreconditionFailed) && !hasStatus(err, http.StatusNotFound) {
			return store.Task{}, nil, tableErr(op, err)
		}
		held, etag, rerr := s.readIdempotency(ctx, op, rec.TenantID, rec.UserID, rec.Key)
		switch {
		case rerr == store.ErrNotFound:
			replace = nil // gone meanwhile (purged): add it
		case rerr != nil:
			return store.Task{}, nil, rerr
		case held.Task.ID == t.ID:
			return t, nil, nil // this very write, sent again after its answer was lost
		case held.ExpiresAt.After(rec.CreatedAt):
			return store.Task{}, &held, nil
		default:
			replace = &etag // expired: the key is free again
		}
	}
	return store.Task{}, nil, fmt.Errorf("%w: table: %s: %d attempts lost to concurrent writes", store.ErrUnavailable, op, tableMaxAttempts)
}

// createActions are a create's task rows and event.
func (s *Store) createActions(t store.Task, e *store.OutboxEvent, rec store.IdempotencyRecord) ([]aztables.TransactionAction, error) {
	evActions, err := outboxAction(e)
	if err != nil {
		return nil, err
	}
	if err := tableCheckUTF8("tenant id", t.TenantID, "created by", t.CreatedBy, "created by name", t.CreatedByName); err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	actions, err := taskActions(t, aztables.TransactionTypeAdd, aztables.TransactionTypeAdd, nil)
	if err != nil {
		return nil, err
	}
	return append(actions, evActions...), nil
}

// idempotencyAction adds the key's row, or replaces the expired one whose
// service ETag is replace.
func idempotencyAction(t store.Task, rec store.IdempotencyRecord, replace *azcore.ETag) (aztables.TransactionAction, error) {
	snapshot, err := store.EncodeTask(t)
	if err != nil {
		return aztables.TransactionAction{}, err
	}
	b, err := marshalEntity(idempotencyEntity{
		PartitionKey: tableKey(rec.TenantID), RowKey: idempotencyRowKey(rec.UserID, rec.Key),
		TenantID: rec.TenantID, UserID: rec.UserID, Key: rec.Key, RequestHash: rec.RequestHash,
		TaskID: t.ID, Task: snapshot,
		CreatedAt: micros(rec.CreatedAt), CreatedAtType: edmInt64, ExpiresAt: micros(rec.ExpiresAt), ExpiresAtType: edmInt64,
	})
	if err != nil {
		return aztables.TransactionAction{}, err
	}
	if replace != nil {
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: b, IfMatch: replace}, nil
	}
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b}, nil
}

// readIdempotency returns the key's record and its service ETag, or ErrNotFound.
func (s *Store) readIdempotency(ctx context.Context, op, tenantID, userID, key string) (store.IdempotencyRecord, azcore.ETag, error) {
	if err := s.checkOpen(); err != nil {
		return store.IdempotencyRecord{}, "", err
	}
	resp, err := s.tasks.GetEntity(ctx, tableKey(tenantID), idempotencyRowKey(userID, key), nil)
	if err != nil {
		if hasStatus(err, http.StatusNotFound) {
			return store.IdempotencyRecord{}, "", store.ErrNotFound
		}
		return store.IdempotencyRecord{}, "", tableErr(op, err)
	}
	var e idempotencyEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return store.IdempotencyRecord{}, "", fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
	}
	if e.TenantID != tenantID || e.UserID != userID || e.Key != key {
		// Two hashed keys collide (never in practice): refuse rather than mix them up.
		return store.IdempotencyRecord{}, "", fmt.Errorf("%w: table: %s: two idempotency keys share a row", store.ErrUnavailable, op)
	}
	rec, err := e.record()
	return rec, resp.ETag, err
}

// RecordIdempotentResponse stores the response of the key's create, once,
// on the condition that the row is still the one read.
func (s *Store) RecordIdempotentResponse(ctx context.Context, tenantID, userID, key, taskID string, status int, body []byte) error {
	if err := store.CheckResponse(status, body); err != nil {
		return err
	}
	const op = "record idempotent response"
	for attempt := range tableMaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, op, attempt); err != nil {
				return err
			}
		}
		rec, etag, err := s.readIdempotency(ctx, op, tenantID, userID, key)
		switch {
		case err != nil:
			return err
		case rec.Task.ID != taskID:
			return store.ErrNotFound
		case rec.Status != 0:
			return nil // recorded before: kept
		}
		b, err := marshalEntity(map[string]any{"PartitionKey": tableKey(tenantID), "RowKey": idempotencyRowKey(userID, key),
			"Status": status, "Body": string(body)})
		if err != nil {
			return err
		}
		_, err = s.tasks.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeMerge})
		switch {
		case err == nil:
			return nil
		case !hasStatus(err, http.StatusPreconditionFailed) && !hasStatus(err, http.StatusNotFound):
			return tableErr(op, err)
		}
	}
	return fmt.Errorf("%w: table: %s: %d attempts lost to concurrent writes", store.ErrUnavailable, op, tableMaxAttempts)
}

// PurgeIdempotencyKeys deletes up to limit records expired at now: a
// filtered scan of every tenant's key rows, each deleted on the condition
// that it is still the one read (a key reused meanwhile is kept).
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, store.Invalidf("purge limit %d is not positive", limit)
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	const op = "purge idempotency keys"
	filter := fmt.Sprintf("RowKey ge '%s' and RowKey lt 'k}' and ExpiresAt le %dL", idempotencyRowPrefix, micros(store.NormTime(now)))
	pager := s.tasks.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	purged := 0
	for pager.More() && purged < limit {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return purged, tableErr(op, err)
		}
		for _, raw := range resp.Entities {
			if purged >= limit {
				break
			}
			var e struct {
				PartitionKey, RowKey string
				ETag                 azcore.ETag `json:"odata.etag"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				return purged, fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
			}
			_, err := s.tasks.DeleteEntity(ctx, e.PartitionKey, e.RowKey, &aztables.DeleteEntityOptions{IfMatch: &e.ETag})
			switch {
			case err == nil:
				purged++
			case hasStatus(err, http.StatusNotFound), hasStatus(err, http.StatusPreconditionFailed):
				// purged or reused meanwhile
			default:
				return purged, tableErr(op, err)
			}
		}
	}
	return purged, nil
}
