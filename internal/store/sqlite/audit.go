package sqlite

import (
	"context"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

func scanAudit(r rowScanner) (store.AuditEntry, error) {
	var (
		e  store.AuditEntry
		ts int64
	)
	if err := r.Scan(&e.ID, &e.EventID, &e.Action, &e.ResourceID, &e.Actor, &e.TenantID, &e.CallerApp, &ts); err != nil {
		return store.AuditEntry{}, err
	}
	e.Timestamp = fromMicros(ts)
	return e, nil
}

// AppendAudit stores e with a new random ID (any ID given is replaced)
// and, if e.Timestamp is zero, the current time, unless an entry with
// e.EventID is stored already: then it returns that entry and created
// false. The unique index on event_id makes that hold for concurrent
// appends too (from this process or another). EventID and TenantID are
// required. An EventID that another tenant's entry holds is refused
// (ErrInvalid) rather than answered with that tenant's entry.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, bool, error) {
	if err := store.RequireID("event id", e.EventID); err != nil {
		return store.AuditEntry{}, false, err
	}
	if err := store.RequireID("tenant id", e.TenantID); err != nil {
		return store.AuditEntry{}, false, err
	}
	ts, err := store.NormTimeOrNow("timestamp", e.Timestamp)
	if err != nil {
		return store.AuditEntry{}, false, err
	}
	e.ID, e.Timestamp = store.NewOrderedID(), ts
	res, err := s.run().ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO NOTHING`,
		e.ID, e.EventID, e.Action, e.ResourceID, e.Actor, e.TenantID, e.CallerApp, micros(e.Timestamp))
	if err != nil {
		return store.AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return store.AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	if n == 1 {
		return e, true, nil
	}
	// Audit entries are never deleted, so the one in the way is still there.
	stored, err := scanAudit(s.run().QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE event_id = ?`, e.EventID))
	if err != nil {
		return store.AuditEntry{}, false, sqliteErr("append audit entry", err)
	}
	if stored.TenantID != e.TenantID {
		return store.AuditEntry{}, false, store.Invalidf("event id %q is another tenant's", e.EventID)
	}
	return stored, false, nil
}

// ListAudit pages through the tenant's audit entries, or every tenant's if
// tenantID is "", newest first (Timestamp descending, then ID descending).
func (s *Store) ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (store.Page[store.AuditEntry], error) {
	return sqliteList(ctx, s.run(), "list audit entries", auditQuery(tenantID), limit, cursor, scanAudit,
		func(e store.AuditEntry) (time.Time, string) { return e.Timestamp, e.ID })
}

// auditQuery lists a tenant's entries, or every tenant's for "".
func auditQuery(tenantID string) sqliteQuery {
	q := sqliteQuery{columns: auditColumns, table: "audit", timeColumn: "ts"}
	if tenantID != "" {
		q.where, q.args = "tenant_id = ?", []any{tenantID}
	}
	return q
}

// Listing.

const auditColumns = `id, event_id, action, resource_id, actor, tenant_id, caller_app, ts`
