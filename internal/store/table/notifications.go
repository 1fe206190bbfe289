package table

// Notifications in Table Storage.

import (
	"context"
	"net/http"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

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

func (e notificationEntity) notification() store.Notification {
	return store.Notification{
		ID: e.ID, Event: e.Event, TaskTitle: e.TaskTitle, To: e.To, Email: e.Email,
		UserOID: e.UserOID, TenantID: e.TenantID, CallerApp: e.CallerApp, Timestamp: fromMicros(e.At),
	}
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
	if err := tableCheckUTF8("event", n.Event, "task title", n.TaskTitle, "to", n.To, "email", n.Email,
		"user oid", n.UserOID, "tenant id", n.TenantID, "caller app", n.CallerApp); err != nil {
		return store.Notification{}, err
	}
	if err := s.checkOpen(); err != nil {
		return store.Notification{}, err
	}
	n.ID, n.Timestamp = store.NewID(), ts
	body, err := marshalEntity(notificationEntity{
		PartitionKey: tableKey(n.TenantID), RowKey: notificationUserPrefix(n.UserOID) + sortKey(n.Timestamp, n.ID),
		ID: n.ID, Event: n.Event, TaskTitle: n.TaskTitle, To: n.To, Email: n.Email,
		UserOID: n.UserOID, TenantID: n.TenantID, CallerApp: n.CallerApp,
		At: micros(n.Timestamp), AtType: edmInt64,
	})
	if err != nil {
		return store.Notification{}, err
	}
	if _, err := s.notifications.AddEntity(ctx, body, nil); err != nil {
		// The id is random: a row in the way is this very insert, sent
		// again after its answer was lost.
		if !hasStatus(err, http.StatusConflict) {
			return store.Notification{}, tableErr("add notification", err)
		}
	}
	return n, nil
}

// ListNotifications pages through the user's notifications in the tenant,
// newest first.
func (s *Store) ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (store.Page[store.Notification], error) {
	if err := store.RequireID("tenant id", tenantID); err != nil {
		return store.Page[store.Notification]{}, err
	}
	if err := store.RequireID("user oid", userOID); err != nil {
		return store.Page[store.Notification]{}, err
	}
	return tableList(ctx, s, s.notifications, "list notifications", tableKey(tenantID), notificationUserPrefix(userOID), limit, cursor,
		func(e notificationEntity) (store.Notification, bool) {
			return e.notification(), e.TenantID == tenantID && e.UserOID == userOID
		},
		func(n store.Notification) (time.Time, string) { return n.Timestamp, n.ID })
}

// Audit log.
