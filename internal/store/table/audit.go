package table

// Audit entries in Table Storage.

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

func newAuditEntity(e store.AuditEntry, pk, rk string) auditEntity {
	return auditEntity{
		PartitionKey: pk, RowKey: rk,
		ID: e.ID, EventID: e.EventID, Action: e.Action, ResourceID: e.ResourceID, Actor: e.Actor,
		TenantID: e.TenantID, CallerApp: e.CallerApp, At: micros(e.Timestamp), AtType: edmInt64,
	}
}

func (e auditEntity) entry() store.AuditEntry {
	return store.AuditEntry{
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
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, bool, error) {
	e, err := newAuditEntry(e)
	if err != nil {
		return store.AuditEntry{}, false, err
	}
	if err := s.checkOpen(); err != nil {
		return store.AuditEntry{}, false, err
	}
	const op = "append audit entry"
	me := e.ID // this append's own mark on the marker

	marker := newAuditEntity(e, auditMarkerPartition(e.EventID), auditMarkerRow)
	marker.CompletedBy = new("")
	body, err := marshalEntity(marker)
	if err != nil {
		return store.AuditEntry{}, false, err
	}
	stored := e
	resp, err := s.audit.AddEntity(ctx, body, nil)
	markerETag := resp.ETag
	if err != nil {
		if !hasStatus(err, http.StatusConflict) {
			return store.AuditEntry{}, false, tableErr(op, err)
		}
		got, completedBy, etag, rerr := s.readAuditMarker(ctx, op, e.EventID)
		if rerr != nil {
			return store.AuditEntry{}, false, rerr
		}
		if got.TenantID != e.TenantID {
			return store.AuditEntry{}, false, store.Invalidf("event id %q is another tenant's", e.EventID)
		}
		if completedBy != "" {
			return got, false, nil
		}
		// Incomplete: another append's (failed or under way), or this one's
		// own insert, sent again after its answer was lost. Complete it.
		stored, markerETag = got, etag
	}

	if err := s.writeAuditRows(ctx, op, stored); err != nil {
		return store.AuditEntry{}, false, err
	}

	// Complete the marker, unless another append did meanwhile.
	done, err := marshalEntity(map[string]any{"PartitionKey": marker.PartitionKey, "RowKey": marker.RowKey, "CompletedBy": me})
	if err != nil {
		return store.AuditEntry{}, false, err
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
			return store.AuditEntry{}, false, rerr
		}
		return stored, completedBy == me, nil
	default:
		return store.AuditEntry{}, false, tableErr(op, err)
	}
}

// newAuditEntry checks e and gives it its id and timestamp (now unless set).
func newAuditEntry(e store.AuditEntry) (store.AuditEntry, error) {
	if err := store.RequireID("event id", e.EventID); err != nil {
		return store.AuditEntry{}, err
	}
	if err := store.RequireID("tenant id", e.TenantID); err != nil {
		return store.AuditEntry{}, err
	}
	ts, err := store.NormTimeOrNow("timestamp", e.Timestamp)
	if err != nil {
		return store.AuditEntry{}, err
	}
	if err := tableCheckUTF8("event id", e.EventID, "action", e.Action, "resource id", e.ResourceID, "actor", e.Actor,
		"tenant id", e.TenantID, "caller app", e.CallerApp); err != nil {
		return store.AuditEntry{}, err
	}
	e.ID, e.Timestamp = store.NewID(), ts
	return e, nil
}

// writeAuditRows writes the entry's listing rows (its tenant's and the
// all-tenants one): the same values whoever writes them.
func (s *Store) writeAuditRows(ctx context.Context, op string, e store.AuditEntry) error {
	for _, pk := range []string{tableKey(e.TenantID), auditAllPartition} {
		row, err := marshalEntity(newAuditEntity(e, pk, auditRowPrefix+sortKey(e.Timestamp, e.ID)))
		if err != nil {
			return err
		}
		if _, err := s.audit.UpsertEntity(ctx, row, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
			return tableErr(op, err)
		}
	}
	return nil
}

// readAuditMarker returns the entry in the event's marker, who completed
// it ("" if no one yet) and the marker's service ETag.
func (s *Store) readAuditMarker(ctx context.Context, op, eventID string) (store.AuditEntry, string, azcore.ETag, error) {
	resp, err := s.audit.GetEntity(ctx, auditMarkerPartition(eventID), auditMarkerRow, nil)
	if err != nil {
		// Markers are never deleted: not found is an error here too.
		return store.AuditEntry{}, "", "", tableErr(op, err)
	}
	var m auditEntity
	if err := json.Unmarshal(resp.Value, &m); err != nil {
		return store.AuditEntry{}, "", "", fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
	}
	if m.EventID != eventID {
		return store.AuditEntry{}, "", "", fmt.Errorf("%w: table: %s: two event ids share the key %s", store.ErrUnavailable, op, auditMarkerPartition(eventID))
	}
	completedBy := ""
	if m.CompletedBy != nil {
		completedBy = *m.CompletedBy
	}
	return m.entry(), completedBy, resp.ETag, nil
}

// ListAudit pages through the tenant's audit entries, or every tenant's if
// tenantID is "", newest first.
func (s *Store) ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (store.Page[store.AuditEntry], error) {
	pk := auditAllPartition
	if tenantID != "" {
		pk = tableKey(tenantID)
	}
	return tableList(ctx, s, s.audit, "list audit entries", pk, auditRowPrefix, limit, cursor,
		func(e auditEntity) (store.AuditEntry, bool) {
			return e.entry(), tenantID == "" || e.TenantID == tenantID
		},
		func(e store.AuditEntry) (time.Time, string) { return e.Timestamp, e.ID })
}
