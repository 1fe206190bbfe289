package store

import (
	"context"
	"time"
)

// States of an [OutboxEvent].
const (
	OutboxPending = "pending" // not yet accepted by the Audit Service
	OutboxDead    = "dead"    // rejected for good or out of attempts: an operator must look
)

// MaxCountDue bounds what CountDue counts (the Table backend scans rows to count).
const MaxCountDue = 10000

// OutboxEvent is an audit event written in the same transaction as the task
// change it records (a transactional outbox), kept until the Audit Service
// has it. EventID is the Audit Service's idempotency key, so redelivering
// an event never duplicates its entry.
type OutboxEvent struct {
	EventID     string    `json:"event_id"`
	TenantID    string    `json:"tenant_id"`
	Action      string    `json:"action"`
	ResourceID  string    `json:"resource_id"`
	Actor       string    `json:"actor"`
	CreatedAt   time.Time `json:"created_at"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// Traceparent and Tracestate are the W3C Trace Context of the request
	// that wrote the event (the headers' values, "" when it had none),
	// kept with it so that a redelivery can link to that request's trace.
	// An operator reads the traceparent in the outbox listing to find the
	// request's log lines. The store keeps them as given (up to
	// MaxTraceparentLength and MaxTracestateLength); a reader must not
	// trust them to be well-formed.
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"-"`
}

// Bounds of an outbox event's trace context (bytes). A version-00
// traceparent is 55 bytes; later versions may append fields. W3C Trace
// Context asks vendors to propagate at least 512 characters of tracestate:
// a writer drops a longer one rather than fail the write.
const (
	MaxTraceparentLength = 128
	MaxTracestateLength  = 512
)

// OutboxDepth is what an outbox holds: the numbers an operator alerts on.
type OutboxDepth struct {
	// Pending and Dead count the events in each state, each up to
	// MaxCountDue (MaxCountDue means that many or more).
	Pending, Dead int
	// OldestPending is when the oldest pending event was written; the
	// zero time when none is pending.
	OldestPending time.Time
}

// Outbox is the delivery side of the outbox; the task writes add events.
type Outbox interface {
	// DueEvents returns up to limit pending events whose next attempt is due
	// at now, oldest first, across tenants.
	DueEvents(ctx context.Context, now time.Time, limit int) ([]OutboxEvent, error)
	// CountDue counts the pending events due at now, across tenants, up to
	// MaxCountDue (a count of MaxCountDue means that many or more).
	CountDue(ctx context.Context, now time.Time) (int, error)
	// MarkDelivered records that the Audit Service has the event: it leaves
	// the outbox (whatever its state), which so holds only what is still
	// owed. Marking an event already gone is no error.
	MarkDelivered(ctx context.Context, tenantID, eventID string) error
	// MarkFailed records a failed attempt of a pending event: attempts+1,
	// the reason, and the next attempt; dead moves it to the dead-letter
	// state. An event no longer pending is left alone; an unknown one is
	// ErrNotFound.
	MarkFailed(ctx context.Context, tenantID, eventID, reason string, next time.Time, dead bool) error
	// OutboxDepth counts a tenant's pending and dead events and finds its
	// oldest pending one; tenantID "" means every tenant's (what a metric
	// of the whole outbox reads).
	OutboxDepth(ctx context.Context, tenantID string) (OutboxDepth, error)
	// ListOutbox pages through a tenant's events in a state, newest first.
	ListOutbox(ctx context.Context, tenantID, state string, limit int, cursor string) (Page[OutboxEvent], error)
}
