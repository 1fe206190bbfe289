package table

// Tasks in Table Storage: each task is two rows, itself and its listing index.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
)

// taskEntity is both of a task's rows.
type taskEntity struct {
	PartitionKey  string
	RowKey        string
	TenantID      string
	ID            string
	Title         string
	Description   string
	Completed     bool
	CreatedBy     string
	CreatedByName string
	CreatedAt     int64  `json:",string"`
	CreatedAtType string `json:"CreatedAt@odata.type,omitempty"`
	UpdatedAt     int64  `json:",string"`
	UpdatedAtType string `json:"UpdatedAt@odata.type,omitempty"`
	StoreETag     string
}

func taskRowKey(id string) string { return taskRowPrefix + id }

func taskIndexKey(t store.Task) string { return taskIndexPrefix + sortKey(t.CreatedAt, t.ID) }

func newTaskEntity(t store.Task, rowKey string) taskEntity {
	return taskEntity{
		PartitionKey: tableKey(t.TenantID), RowKey: rowKey,
		TenantID: t.TenantID, ID: t.ID, Title: t.Title, Description: t.Description, Completed: t.Completed,
		CreatedBy: t.CreatedBy, CreatedByName: t.CreatedByName,
		CreatedAt: micros(t.CreatedAt), CreatedAtType: edmInt64,
		UpdatedAt: micros(t.UpdatedAt), UpdatedAtType: edmInt64,
		StoreETag: t.ETag,
	}
}

func (e taskEntity) task() store.Task {
	return store.Task{
		ID: e.ID, TenantID: e.TenantID, Title: e.Title, Description: e.Description, Completed: e.Completed,
		CreatedBy: e.CreatedBy, CreatedByName: e.CreatedByName,
		CreatedAt: fromMicros(e.CreatedAt), UpdatedAt: fromMicros(e.UpdatedAt), ETag: e.StoreETag,
	}
}

// taskActions returns the transaction writing both of t's rows with the
// given action, the task row on the condition of ifMatch (nil: none).
func taskActions(t store.Task, action aztables.TransactionType, indexAction aztables.TransactionType, ifMatch *azcore.ETag) ([]aztables.TransactionAction, error) {
	row, err := marshalEntity(newTaskEntity(t, taskRowKey(t.ID)))
	if err != nil {
		return nil, err
	}
	index, err := marshalEntity(newTaskEntity(t, taskIndexKey(t)))
	if err != nil {
		return nil, err
	}
	return []aztables.TransactionAction{
		{ActionType: action, Entity: row, IfMatch: ifMatch},
		{ActionType: indexAction, Entity: index},
	}, nil
}

// CreateTask stores t with a new random ID and ETag and the current time
// as CreatedAt and UpdatedAt, its task row and index row in one
// transaction.
func (s *Store) CreateTask(ctx context.Context, t store.Task, ev *store.OutboxEvent) (store.Task, error) {
	t, err := store.NormTask(t)
	if err != nil {
		return store.Task{}, err
	}
	e, err := store.NormEvent(ev, t.TenantID, t.ID)
	if err != nil {
		return store.Task{}, err
	}
	evActions, err := outboxAction(e)
	if err != nil {
		return store.Task{}, err
	}
	if err := tableCheckUTF8("tenant id", t.TenantID, "created by", t.CreatedBy, "created by name", t.CreatedByName); err != nil {
		return store.Task{}, err
	}
	if err := s.checkOpen(); err != nil {
		return store.Task{}, err
	}
	actions, err := taskActions(t, aztables.TransactionTypeAdd, aztables.TransactionTypeAdd, nil)
	if err != nil {
		return store.Task{}, err
	}
	if _, err := s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil); err != nil {
		if hasStatus(err, http.StatusConflict) {
			// The id is random: the row in the way is this very write,
			// sent again after its answer was lost.
			if got, _, gerr := s.readTask(ctx, "create task", t.TenantID, t.ID); gerr == nil && got.ETag == t.ETag {
				store.Stored(ev, e)
				return t, nil
			}
		}
		return store.Task{}, tableErr("create task", err)
	}
	store.Stored(ev, e)
	return t, nil
}

// readTask returns the task row of the tenant's task id and the service's
// ETag of it, or ErrNotFound.
func (s *Store) readTask(ctx context.Context, op, tenantID, id string) (store.Task, azcore.ETag, error) {
	if strings.TrimSpace(tenantID) == "" || !store.IsID(id) {
		return store.Task{}, "", store.ErrNotFound // no such task is ever stored
	}
	if err := s.checkOpen(); err != nil {
		return store.Task{}, "", err
	}
	resp, err := s.tasks.GetEntity(ctx, tableKey(tenantID), taskRowKey(id), nil)
	if err != nil {
		if hasStatus(err, http.StatusNotFound) {
			return store.Task{}, "", store.ErrNotFound
		}
		return store.Task{}, "", tableErr(op, err)
	}
	var e taskEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return store.Task{}, "", fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
	}
	if e.TenantID != tenantID || e.ID != id {
		return store.Task{}, "", store.ErrNotFound // a hashed key's collision: not this task
	}
	return e.task(), resp.ETag, nil
}

// GetTask returns the tenant's task id, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, tenantID, id string) (store.Task, error) {
	t, _, err := s.readTask(ctx, "get task", tenantID, id)
	return t, err
}

// ListTasks pages through the tenant's tasks, newest first, from their
// index rows.
func (s *Store) ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (store.Page[store.Task], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.Task]{}, err
	}
	return tableList(ctx, s, s.tasks, "list tasks", tableKey(tenantID), taskIndexPrefix, limit, cursor,
		func(e taskEntity) (store.Task, bool) { return e.task(), e.TenantID == tenantID },
		func(t store.Task) (time.Time, string) { return t.CreatedAt, t.ID })
}

// UpdateTask reads the task, checks ifMatch against its ETag and writes
// both rows in one transaction on the condition that the task row is still
// the one read (the service's ETag). If it is not, it reads again: a
// conditional update then fails (the ETag changed), an unconditional one
// tries again.
func (s *Store) UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p store.TaskPatch, ev *store.OutboxEvent) (store.Task, error) {
	p, err := store.NormPatch(p)
	if err != nil {
		return store.Task{}, err
	}
	e, err := store.NormEvent(ev, tenantID, id)
	if err != nil {
		return store.Task{}, err
	}
	evActions, err := outboxAction(e)
	if err != nil {
		return store.Task{}, err
	}
	var tried string // the ETag the last attempt wrote
	for attempt := range tableMaxAttempts {
		if attempt > 0 && ifMatch == "" { // a conditional one is decided by the next read
			if err := backoff(ctx, "update task", attempt); err != nil {
				return store.Task{}, err
			}
		}
		cur, svcETag, err := s.readTask(ctx, "update task", tenantID, id)
		if err != nil {
			return store.Task{}, err
		}
		if tried != "" && cur.ETag == tried {
			return cur, nil // the last attempt landed; its answer was lost
		}
		if ifMatch != "" && cur.ETag != ifMatch {
			return store.Task{}, store.ErrPreconditionFailed
		}
		next := cur
		if p.Title != nil {
			next.Title = *p.Title
		}
		if p.Completed != nil {
			next.Completed = *p.Completed
		}
		next.ETag = store.NewETag()
		if next.UpdatedAt = store.Now(); next.UpdatedAt.Before(cur.UpdatedAt) {
			next.UpdatedAt = cur.UpdatedAt // never backwards, even if the clock is
		}
		// The index row is replaced or inserted: no condition of its own.
		actions, err := taskActions(next, aztables.TransactionTypeUpdateReplace, aztables.TransactionTypeInsertReplace, &svcETag)
		if err != nil {
			return store.Task{}, err
		}
		_, err = s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil)
		switch {
		case err == nil:
			store.Stored(ev, e)
			return next, nil
		case hasStatus(err, http.StatusPreconditionFailed), hasStatus(err, http.StatusNotFound):
			tried = next.ETag // changed or deleted meanwhile: read again
		default:
			return store.Task{}, tableErr("update task", err)
		}
	}
	return store.Task{}, fmt.Errorf("%w: table: update task: %d attempts lost to concurrent writes", store.ErrUnavailable, tableMaxAttempts)
}

// DeleteTask deletes both of the task's rows in one transaction if ifMatch
// is "" or the task's ETag, on the condition that the task row is still the
// one read.
func (s *Store) DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *store.OutboxEvent) error {
	e, err := store.NormEvent(ev, tenantID, id)
	if err != nil {
		return err
	}
	evActions, err := outboxAction(e)
	if err != nil {
		return err
	}
	for attempt := range tableMaxAttempts {
		if attempt > 0 && ifMatch == "" {
			if err := backoff(ctx, "delete task", attempt); err != nil {
				return err
			}
		}
		cur, svcETag, err := s.readTask(ctx, "delete task", tenantID, id)
		if err != nil {
			return err
		}
		if ifMatch != "" && cur.ETag != ifMatch {
			return store.ErrPreconditionFailed
		}
		actions, err := taskActions(cur, aztables.TransactionTypeDelete, aztables.TransactionTypeDelete, &svcETag)
		if err != nil {
			return err
		}
		_, err = s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil)
		switch {
		case err == nil:
			store.Stored(ev, e)
			return nil
		case hasStatus(err, http.StatusPreconditionFailed), hasStatus(err, http.StatusNotFound):
			// changed or deleted meanwhile: read again
		default:
			return tableErr("delete task", err)
		}
	}
	return fmt.Errorf("%w: table: delete task: %d attempts lost to concurrent writes", store.ErrUnavailable, tableMaxAttempts)
}

// Notifications.
