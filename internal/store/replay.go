package store

import (
	"context"
	"time"
)

// ActionOutboxReplay is the audit action of an operator's replay of a dead
// letter: the replay is audited through the outbox like a task change, its
// ResourceID the replayed event's id.
const ActionOutboxReplay = "outbox.replay"

// OutboxReplay is an operator's way back for dead letters.
type OutboxReplay interface {
	// ReplayDead moves the tenant's dead event back to pending, as one
	// conditional write (only a dead event moves): attempts 0, the last
	// error kept, due at next. audit, when not nil, is written in the same
	// transaction, as NormEvent fills it (resource: the replayed event's
	// id), and set to what was stored. It returns the event as it is now
	// and whether this call moved it: an event that is not dead (pending:
	// replayed meanwhile, or never dead) is returned as is, replayed false,
	// and audit is not written. Nor is it when the replayed event is itself
	// a replay's audit record (ActionOutboxReplay): auditing the replay of
	// an audit record again could go on without end. An event the tenant's
	// outbox does not hold (unknown, another tenant's, or delivered) is
	// ErrNotFound.
	ReplayDead(ctx context.Context, tenantID, eventID string, next time.Time, audit *OutboxEvent) (ev OutboxEvent, replayed bool, err error)
}

// CheckReplay checks a ReplayDead request before a backend runs it.
func CheckReplay(tenantID, eventID string) error {
	if err := RequireID("tenant id", tenantID); err != nil {
		return err
	}
	return RequireID("event id", eventID)
}
