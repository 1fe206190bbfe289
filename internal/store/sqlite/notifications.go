package sqlite

import (
	"context"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

func scanNotification(r rowScanner) (store.Notification, error) {
	var (
		n  store.Notification
		ts int64
	)
	if err := r.Scan(&n.ID, &n.Event, &n.TaskTitle, &n.To, &n.Email, &n.UserOID, &n.TenantID, &n.CallerApp, &ts); err != nil {
		return store.Notification{}, err
	}
	n.Timestamp = fromMicros(ts)
	return n, nil
}

// AddNotification stores n with a new random ID (any ID given is
// replaced) and, if n.Timestamp is zero, the current time. TenantID and
// UserOID are required.
func (s *Store) AddNotification(ctx context.Context, n store.Notification) (store.Notification, error) {
	if err := store.RequireID("tenant id", n.TenantID); err != nil {
		return store.Notification{}, err
	}
	if err := store.RequireID("user oid", n.UserOID); err != nil {
		return store.Notification{}, err
	}
	ts, err := store.NormTimeOrNow("timestamp", n.Timestamp)
	if err != nil {
		return store.Notification{}, err
	}
	n.ID, n.Timestamp = store.NewOrderedID(), ts
	_, err = s.run().ExecContext(ctx, `INSERT INTO notifications (`+notificationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.Event, n.TaskTitle, n.To, n.Email, n.UserOID, n.TenantID, n.CallerApp, micros(n.Timestamp))
	if err != nil {
		return store.Notification{}, sqliteErr("add notification", err)
	}
	return n, nil
}

// ListNotifications pages through the user's notifications in the tenant,
// newest first (Timestamp descending, then ID descending).
func (s *Store) ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (store.Page[store.Notification], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.Notification]{}, err
	}
	if err := store.RequireID("user oid", userOID); err != nil {
		return store.Page[store.Notification]{}, err
	}
	return sqliteList(ctx, s.run(), "list notifications", notificationsQuery(tenantID, userOID),
		limit, cursor, scanNotification, func(n store.Notification) (time.Time, string) { return n.Timestamp, n.ID })
}

func notificationsQuery(tenantID, userOID string) sqliteQuery {
	return sqliteQuery{columns: notificationColumns, table: "notifications", timeColumn: "ts",
		where: "tenant_id = ? AND user_oid = ?", args: []any{tenantID, userOID}}
}

// Audit log.

const notificationColumns = `id, event, task_title, to_name, email, user_oid, tenant_id, caller_app, ts`
