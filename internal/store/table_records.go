package store

// The Table backend's records: entities and operations (see Table).

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// tableMaxAttempts bounds the read-modify-write rounds of one update or
// delete that keeps losing to concurrent writes (only unconditional ones
// retry: a conditional one fails with ErrPreconditionFailed instead).
// Between rounds it waits a random time up to tableBackoff, doubling from
// round to round up to tableMaxBackoff.
const (
	tableMaxAttempts = 20
	tableBackoff     = 5 * time.Millisecond
	tableMaxBackoff  = 250 * time.Millisecond
)

// backoff waits before read-modify-write round attempt (from 1), or until
// ctx ends.
func backoff(ctx context.Context, op string, attempt int) error {
	d := min(tableBackoff<<min(attempt-1, 16), tableMaxBackoff)
	timer := time.NewTimer(rand.N(d) + time.Millisecond)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: table: %s: %w", ErrUnavailable, op, ctx.Err())
	case <-timer.C:
		return nil
	}
}

// Tasks.

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

func taskIndexKey(t Task) string { return taskIndexPrefix + sortKey(t.CreatedAt, t.ID) }

func newTaskEntity(t Task, rowKey string) taskEntity {
	return taskEntity{
		PartitionKey: tableKey(t.TenantID), RowKey: rowKey,
		TenantID: t.TenantID, ID: t.ID, Title: t.Title, Description: t.Description, Completed: t.Completed,
		CreatedBy: t.CreatedBy, CreatedByName: t.CreatedByName,
		CreatedAt: micros(t.CreatedAt), CreatedAtType: edmInt64,
		UpdatedAt: micros(t.UpdatedAt), UpdatedAtType: edmInt64,
		StoreETag: t.ETag,
	}
}

func (e taskEntity) task() Task {
	return Task{
		ID: e.ID, TenantID: e.TenantID, Title: e.Title, Description: e.Description, Completed: e.Completed,
		CreatedBy: e.CreatedBy, CreatedByName: e.CreatedByName,
		CreatedAt: fromMicros(e.CreatedAt), UpdatedAt: fromMicros(e.UpdatedAt), ETag: e.StoreETag,
	}
}

// taskActions returns the transaction writing both of t's rows with the
// given action, the task row on the condition of ifMatch (nil: none).
func taskActions(t Task, action aztables.TransactionType, indexAction aztables.TransactionType, ifMatch *azcore.ETag) ([]aztables.TransactionAction, error) {
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
func (s *Table) CreateTask(ctx context.Context, t Task, ev *OutboxEvent) (Task, error) {
	t, err := normTask(t)
	if err != nil {
		return Task{}, err
	}
	e, err := normEvent(ev, t.TenantID, t.ID)
	if err != nil {
		return Task{}, err
	}
	evActions, err := outboxAction(e)
	if err != nil {
		return Task{}, err
	}
	if err := tableCheckUTF8("tenant id", t.TenantID, "created by", t.CreatedBy, "created by name", t.CreatedByName); err != nil {
		return Task{}, err
	}
	if err := s.checkOpen(); err != nil {
		return Task{}, err
	}
	actions, err := taskActions(t, aztables.TransactionTypeAdd, aztables.TransactionTypeAdd, nil)
	if err != nil {
		return Task{}, err
	}
	if _, err := s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil); err != nil {
		if hasStatus(err, http.StatusConflict) {
			// The id is random: the row in the way is this very write,
			// sent again after its answer was lost.
			if got, _, gerr := s.readTask(ctx, "create task", t.TenantID, t.ID); gerr == nil && got.ETag == t.ETag {
				return t, nil
			}
		}
		return Task{}, tableErr("create task", err)
	}
	return t, nil
}

// readTask returns the task row of the tenant's task id and the service's
// ETag of it, or ErrNotFound.
func (s *Table) readTask(ctx context.Context, op, tenantID, id string) (Task, azcore.ETag, error) {
	if strings.TrimSpace(tenantID) == "" || !isID(id) {
		return Task{}, "", ErrNotFound // no such task is ever stored
	}
	if err := s.checkOpen(); err != nil {
		return Task{}, "", err
	}
	resp, err := s.tasks.GetEntity(ctx, tableKey(tenantID), taskRowKey(id), nil)
	if err != nil {
		if hasStatus(err, http.StatusNotFound) {
			return Task{}, "", ErrNotFound
		}
		return Task{}, "", tableErr(op, err)
	}
	var e taskEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return Task{}, "", fmt.Errorf("%w: table: %s: decode entity: %w", ErrUnavailable, op, err)
	}
	if e.TenantID != tenantID || e.ID != id {
		return Task{}, "", ErrNotFound // a hashed key's collision: not this task
	}
	return e.task(), resp.ETag, nil
}

// GetTask returns the tenant's task id, or ErrNotFound.
func (s *Table) GetTask(ctx context.Context, tenantID, id string) (Task, error) {
	t, _, err := s.readTask(ctx, "get task", tenantID, id)
	return t, err
}

// ListTasks pages through the tenant's tasks, newest first, from their
// index rows.
func (s *Table) ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (Page[Task], error) {
	if err := requireID("tenant id", tenantID); err != nil {
		return Page[Task]{}, err
	}
	return tableList(ctx, s, s.tasks, "list tasks", tableKey(tenantID), taskIndexPrefix, limit, cursor,
		func(e taskEntity) (Task, bool) { return e.task(), e.TenantID == tenantID },
		func(t Task) (time.Time, string) { return t.CreatedAt, t.ID })
}

// UpdateTask reads the task, checks ifMatch against its ETag and writes
// both rows in one transaction on the condition that the task row is still
// the one read (the service's ETag). If it is not, it reads again: a
// conditional update then fails (the ETag changed), an unconditional one
// tries again.
func (s *Table) UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p TaskPatch, ev *OutboxEvent) (Task, error) {
	p, err := normPatch(p)
	if err != nil {
		return Task{}, err
	}
	e, err := normEvent(ev, tenantID, id)
	if err != nil {
		return Task{}, err
	}
	evActions, err := outboxAction(e)
	if err != nil {
		return Task{}, err
	}
	var tried string // the ETag the last attempt wrote
	for attempt := range tableMaxAttempts {
		if attempt > 0 && ifMatch == "" { // a conditional one is decided by the next read
			if err := backoff(ctx, "update task", attempt); err != nil {
				return Task{}, err
			}
		}
		cur, svcETag, err := s.readTask(ctx, "update task", tenantID, id)
		if err != nil {
			return Task{}, err
		}
		if tried != "" && cur.ETag == tried {
			return cur, nil // the last attempt landed; its answer was lost
		}
		if ifMatch != "" && cur.ETag != ifMatch {
			return Task{}, ErrPreconditionFailed
		}
		next := cur
		if p.Title != nil {
			next.Title = *p.Title
		}
		if p.Completed != nil {
			next.Completed = *p.Completed
		}
		next.ETag = newETag()
		if next.UpdatedAt = now(); next.UpdatedAt.Before(cur.UpdatedAt) {
			next.UpdatedAt = cur.UpdatedAt // never backwards, even if the clock is
		}
		// The index row is replaced or inserted: no condition of its own.
		actions, err := taskActions(next, aztables.TransactionTypeUpdateReplace, aztables.TransactionTypeInsertReplace, &svcETag)
		if err != nil {
			return Task{}, err
		}
		_, err = s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil)
		switch {
		case err == nil:
			return next, nil
		case hasStatus(err, http.StatusPreconditionFailed), hasStatus(err, http.StatusNotFound):
			tried = next.ETag // changed or deleted meanwhile: read again
		default:
			return Task{}, tableErr("update task", err)
		}
	}
	return Task{}, fmt.Errorf("%w: table: update task: %d attempts lost to concurrent writes", ErrUnavailable, tableMaxAttempts)
}

// DeleteTask deletes both of the task's rows in one transaction if ifMatch
// is "" or the task's ETag, on the condition that the task row is still the
// one read.
func (s *Table) DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *OutboxEvent) error {
	e, err := normEvent(ev, tenantID, id)
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
			return ErrPreconditionFailed
		}
		actions, err := taskActions(cur, aztables.TransactionTypeDelete, aztables.TransactionTypeDelete, &svcETag)
		if err != nil {
			return err
		}
		_, err = s.tasks.SubmitTransaction(ctx, append(actions, evActions...), nil)
		switch {
		case err == nil:
			return nil
		case hasStatus(err, http.StatusPreconditionFailed), hasStatus(err, http.StatusNotFound):
			// changed or deleted meanwhile: read again
		default:
			return tableErr("delete task", err)
		}
	}
	return fmt.Errorf("%w: table: delete task: %d attempts lost to concurrent writes", ErrUnavailable, tableMaxAttempts)
}

// Notifications.

type notificationEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	Event        string
	TaskTitle    string
	To           string
	Email        string
	UserOID      string
	TenantID     string
	CallerApp    string
	At           int64  `json:",string"`
	AtType       string `json:"At@odata.type,omitempty"`
}

func notificationUserPrefix(userOID string) string {
	return notificationPrefix + tableKey(userOID) + "|"
}

func (e notificationEntity) notification() Notification {
	return Notification{
		ID: e.ID, Event: e.Event, TaskTitle: e.TaskTitle, To: e.To, Email: e.Email,
		UserOID: e.UserOID, TenantID: e.TenantID, CallerApp: e.CallerApp, Timestamp: fromMicros(e.At),
	}
}

// AddNotification stores n with a new random ID (any ID given is
// replaced) and, if n.Timestamp is zero, the current time. TenantID and
// UserOID are required.
func (s *Table) AddNotification(ctx context.Context, n Notification) (Notification, error) {
	if err := requireID("tenant id", n.TenantID); err != nil {
		return Notification{}, err
	}
	if err := requireID("user oid", n.UserOID); err != nil {
		return Notification{}, err
	}
	ts, err := normTimeOrNow("timestamp", n.Timestamp)
	if err != nil {
		return Notification{}, err
	}
	if err := tableCheckUTF8("event", n.Event, "task title", n.TaskTitle, "to", n.To, "email", n.Email,
		"user oid", n.UserOID, "tenant id", n.TenantID, "caller app", n.CallerApp); err != nil {
		return Notification{}, err
	}
	if err := s.checkOpen(); err != nil {
		return Notification{}, err
	}
	n.ID, n.Timestamp = newID(), ts
	body, err := marshalEntity(notificationEntity{
		PartitionKey: tableKey(n.TenantID), RowKey: notificationUserPrefix(n.UserOID) + sortKey(n.Timestamp, n.ID),
		ID: n.ID, Event: n.Event, TaskTitle: n.TaskTitle, To: n.To, Email: n.Email,
		UserOID: n.UserOID, TenantID: n.TenantID, CallerApp: n.CallerApp,
		At: micros(n.Timestamp), AtType: edmInt64,
	})
	if err != nil {
		return Notification{}, err
	}
	if _, err := s.notifications.AddEntity(ctx, body, nil); err != nil {
		// The id is random: a row in the way is this very insert, sent
		// again after its answer was lost.
		if !hasStatus(err, http.StatusConflict) {
			return Notification{}, tableErr("add notification", err)
		}
	}
	return n, nil
}

// ListNotifications pages through the user's notifications in the tenant,
// newest first.
func (s *Table) ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (Page[Notification], error) {
	if err := requireID("tenant id", tenantID); err != nil {
		return Page[Notification]{}, err
	}
	if err := requireID("user oid", userOID); err != nil {
		return Page[Notification]{}, err
	}
	return tableList(ctx, s, s.notifications, "list notifications", tableKey(tenantID), notificationUserPrefix(userOID), limit, cursor,
		func(e notificationEntity) (Notification, bool) {
			return e.notification(), e.TenantID == tenantID && e.UserOID == userOID
		},
		func(n Notification) (time.Time, string) { return n.Timestamp, n.ID })
}

// Audit log.

type auditEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	EventID      string
	Action       string
	ResourceID   string
	Actor        string
	TenantID     string
	CallerApp    string
	At           int64  `json:",string"`
	AtType       string `json:"At@odata.type,omitempty"`
	// CompletedBy is, on a marker, the id of the append that completed
	// it ("" while incomplete); absent on the listing rows.
	CompletedBy *string `json:",omitempty"`
}

func newAuditEntity(e AuditEntry, pk, rk string) auditEntity {
	return auditEntity{
		PartitionKey: pk, RowKey: rk,
		ID: e.ID, EventID: e.EventID, Action: e.Action, ResourceID: e.ResourceID, Actor: e.Actor,
		TenantID: e.TenantID, CallerApp: e.CallerApp, At: micros(e.Timestamp), AtType: edmInt64,
	}
}

func (e auditEntity) entry() AuditEntry {
	return AuditEntry{
		ID: e.ID, EventID: e.EventID, Action: e.Action, ResourceID: e.ResourceID, Actor: e.Actor,
		TenantID: e.TenantID, CallerApp: e.CallerApp, Timestamp: fromMicros(e.At),
	}
}

func auditMarkerPartition(eventID string) string { return auditEventPrefix + tableKey(eventID) }

// AppendAudit stores e with a new random ID (any ID given is replaced)
// and, if e.Timestamp is zero, the current time, unless an entry with
// e.EventID is stored already: then it returns that entry and created
// false. The event's marker row makes that hold for concurrent appends
// (from any process); see Table for how a failed append is completed by
// its retry. An EventID another tenant's entry holds is refused
// (ErrInvalid).
func (s *Table) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, bool, error) {
	if err := requireID("event id", e.EventID); err != nil {
		return AuditEntry{}, false, err
	}
	if err := requireID("tenant id", e.TenantID); err != nil {
		return AuditEntry{}, false, err
	}
	ts, err := normTimeOrNow("timestamp", e.Timestamp)
	if err != nil {
		return AuditEntry{}, false, err
	}
	if err := tableCheckUTF8("event id", e.EventID, "action", e.Action, "resource id", e.ResourceID, "actor", e.Actor,
		"tenant id", e.TenantID, "caller app", e.CallerApp); err != nil {
		return AuditEntry{}, false, err
	}
	if err := s.checkOpen(); err != nil {
		return AuditEntry{}, false, err
	}
	e.ID, e.Timestamp = newID(), ts
	const op = "append audit entry"
	me := e.ID // this append's own mark on the marker

	marker := newAuditEntity(e, auditMarkerPartition(e.EventID), auditMarkerRow)
	marker.CompletedBy = new("")
	body, err := marshalEntity(marker)
	if err != nil {
		return AuditEntry{}, false, err
	}
	stored := e
	resp, err := s.audit.AddEntity(ctx, body, nil)
	markerETag := resp.ETag
	if err != nil {
		if !hasStatus(err, http.StatusConflict) {
			return AuditEntry{}, false, tableErr(op, err)
		}
		got, completedBy, etag, rerr := s.readAuditMarker(ctx, op, e.EventID)
		if rerr != nil {
			return AuditEntry{}, false, rerr
		}
		if got.TenantID != e.TenantID {
			return AuditEntry{}, false, invalidf("event id %q is another tenant's", e.EventID)
		}
		if completedBy != "" {
			return got, false, nil
		}
		// Incomplete: another append's (failed or under way), or this one's
		// own insert, sent again after its answer was lost. Complete it.
		stored, markerETag = got, etag
	}

	// The listing rows: the same values whoever writes them.
	for _, pk := range []string{tableKey(stored.TenantID), auditAllPartition} {
		row, err := marshalEntity(newAuditEntity(stored, pk, auditRowPrefix+sortKey(stored.Timestamp, stored.ID)))
		if err != nil {
			return AuditEntry{}, false, err
		}
		if _, err := s.audit.UpsertEntity(ctx, row, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
			return AuditEntry{}, false, tableErr(op, err)
		}
	}

	// Complete the marker, unless another append did meanwhile.
	done, err := marshalEntity(map[string]any{"PartitionKey": marker.PartitionKey, "RowKey": marker.RowKey, "CompletedBy": me})
	if err != nil {
		return AuditEntry{}, false, err
	}
	_, err = s.audit.UpdateEntity(ctx, done, &aztables.UpdateEntityOptions{IfMatch: &markerETag, UpdateMode: aztables.UpdateModeMerge})
	switch {
	case err == nil:
		return stored, true, nil
	case hasStatus(err, http.StatusPreconditionFailed):
		// Completed by another append, or by this one's update sent again
		// after its answer was lost.
		_, completedBy, _, rerr := s.readAuditMarker(ctx, op, e.EventID)
		if rerr != nil {
			return AuditEntry{}, false, rerr
		}
		return stored, completedBy == me, nil
	default:
		return AuditEntry{}, false, tableErr(op, err)
	}
}

// readAuditMarker returns the entry in the event's marker, who completed
// it ("" if no one yet) and the marker's service ETag.
func (s *Table) readAuditMarker(ctx context.Context, op, eventID string) (AuditEntry, string, azcore.ETag, error) {
	resp, err := s.audit.GetEntity(ctx, auditMarkerPartition(eventID), auditMarkerRow, nil)
	if err != nil {
		// Markers are never deleted: not found is an error here too.
		return AuditEntry{}, "", "", tableErr(op, err)
	}
	var m auditEntity
	if err := json.Unmarshal(resp.Value, &m); err != nil {
		return AuditEntry{}, "", "", fmt.Errorf("%w: table: %s: decode entity: %w", ErrUnavailable, op, err)
	}
	if m.EventID != eventID {
		return AuditEntry{}, "", "", fmt.Errorf("%w: table: %s: two event ids share the key %s", ErrUnavailable, op, auditMarkerPartition(eventID))
	}
	completedBy := ""
	if m.CompletedBy != nil {
		completedBy = *m.CompletedBy
	}
	return m.entry(), completedBy, resp.ETag, nil
}

// ListAudit pages through the tenant's audit entries, or every tenant's if
// tenantID is "", newest first.
func (s *Table) ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (Page[AuditEntry], error) {
	pk := auditAllPartition
	if tenantID != "" {
		pk = tableKey(tenantID)
	}
	return tableList(ctx, s, s.audit, "list audit entries", pk, auditRowPrefix, limit, cursor,
		func(e auditEntity) (AuditEntry, bool) { return e.entry(), tenantID == "" || e.TenantID == tenantID },
		func(e AuditEntry) (time.Time, string) { return e.Timestamp, e.ID })
}
