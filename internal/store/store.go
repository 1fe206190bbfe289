// Package store keeps the three services' data: tasks (Task API),
// notifications (Notification Service) and audit entries (Audit Service).
// Every record belongs to a tenant, and every read names the tenant, so one
// tenant's records are unreachable from another's requests by construction.
//
// Backends: SQLite (embedded, the default for local and single-instance
// runs; package store/sqlite) and Azure Table Storage (required in Azure;
// package store/table); store/backend.Open picks one from the environment. Task writes carry their
// audit event into an outbox in the same transaction (see Outbox). The
// contract every backend meets is the test suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped or not) for callers to branch on.
var (
	ErrNotFound           = errors.New("store: not found")
	ErrPreconditionFailed = errors.New("store: the record changed (ETag mismatch)")
	ErrUnavailable        = errors.New("store: storage unavailable")
)

// Limits of what the store accepts.
const (
	MaxTitleLength       = 200  // characters
	MaxDescriptionLength = 2000 // characters
	MaxPageSize          = 100
	DefaultPageSize      = 50
)

// Task is a tenant's task. ID is random (128 bits, unguessable); ETag
// changes on every write.
type Task struct {
	ID            string    `json:"id"`
	TenantID      string    `json:"tenant_id"`
	Title         string    `json:"title"`
	Description   string    `json:"description"`
	Completed     bool      `json:"completed"`
	CreatedBy     string    `json:"created_by"` // user oid
	CreatedByName string    `json:"created_by_name"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	ETag          string    `json:"-"`
}

// TaskPatch changes some of a task's fields; nil leaves a field alone.
type TaskPatch struct {
	Title     *string
	Completed *bool
}

// Page is one page of a listing; Next is the opaque cursor of the following
// page, "" on the last.
type Page[T any] struct {
	Items []T
	Next  string
}

// Tasks stores tasks. Each write may carry an audit event (nil for none),
// stored in the same transaction as the change (see [Outbox]): both are
// written, or neither.
type Tasks interface {
	// CreateTask stores t (ID, ETag and times are set by the store) and
	// returns it; ev's ResourceID becomes the new task's id.
	CreateTask(ctx context.Context, t Task, ev *OutboxEvent) (Task, error)
	// GetTask returns the tenant's task, or ErrNotFound (also for another tenant's id).
	GetTask(ctx context.Context, tenantID, id string) (Task, error)
	// ListTasks pages through the tenant's tasks, newest first.
	ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (Page[Task], error)
	// UpdateTask applies p if ifMatch is "" or the current ETag, else ErrPreconditionFailed.
	UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p TaskPatch, ev *OutboxEvent) (Task, error)
	// DeleteTask deletes if ifMatch is "" or the current ETag.
	DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *OutboxEvent) error
}

// Notification is one notification the Notification Service recorded.
type Notification struct {
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	TaskTitle string    `json:"task_title"`
	To        string    `json:"to"`    // the user's name
	Email     string    `json:"email"` // preferred_username
	UserOID   string    `json:"user_oid"`
	TenantID  string    `json:"tenant_id"`
	CallerApp string    `json:"caller_app"`
	Timestamp time.Time `json:"timestamp"`
}

// Notifications stores notifications.
type Notifications interface {
	AddNotification(ctx context.Context, n Notification) (Notification, error)
	// ListNotifications pages through one user's notifications in a tenant, newest first.
	ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (Page[Notification], error)
}

// AuditEntry is one audit log record. EventID is the caller's idempotency key.
type AuditEntry struct {
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	Action     string    `json:"action"`
	ResourceID string    `json:"resource_id"`
	Actor      string    `json:"actor"`
	TenantID   string    `json:"tenant_id"`
	CallerApp  string    `json:"caller_app"` // from the token, never from the body
	Timestamp  time.Time `json:"timestamp"`
}

// AuditLog stores audit entries.
type AuditLog interface {
	// AppendAudit stores e unless an entry with e.EventID exists; either way
	// it returns the stored entry, and created says which happened.
	AppendAudit(ctx context.Context, e AuditEntry) (entry AuditEntry, created bool, err error)
	// ListAudit pages through a tenant's entries ("" for every tenant), newest first.
	ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (Page[AuditEntry], error)
}

// Store is every store a backend provides.
type Store interface {
	Tasks
	IdempotentTasks
	Outbox
	OutboxReplay
	Notifications
	AuditLog
	Close() error
}
