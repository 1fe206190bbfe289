package taskapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/web"
)

// The operator roles of the Task API (app roles for users, like Admin):
// replaying dead letters is an operator's act, not a tenant Admin's.
const (
	// RoleOutboxReplay replays the dead letters of the caller's own tenant.
	RoleOutboxReplay = "Outbox.Replay"
	// RoleOutboxReplayAll replays any tenant's (?tenant=<tenant id>): for
	// the operators of the deployment, in its home tenant.
	RoleOutboxReplayAll = "Outbox.Replay.All"
)

// MaxReplayBatch bounds the dead letters one tenant-wide replay moves (and
// then delivers at once); the answer says whether more are left.
const MaxReplayBatch = 100

var (
	operators = []string{RoleOutboxReplay, RoleOutboxReplayAll}
	// outboxReaders see a tenant's outbox: its Admins and the operators.
	outboxReaders = []string{RoleAdmin, RoleOutboxReplay, RoleOutboxReplayAll}
)

// guidPattern is an Entra tenant id or an outbox event id (newEventID), as
// they are written: lowercase.
var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// replayResult is the answer to a replay of one event. State is where the
// event is now: delivered (the Audit Service has it; it left the outbox),
// pending (the sweep delivers it) or dead (refused for good again).
type replayResult struct {
	EventID         string   `json:"event_id"`
	TenantID        string   `json:"tenant_id"`
	Action          string   `json:"action"`
	Replayed        bool     `json:"replayed"`
	State           string   `json:"state"`
	DeliveryFailure *Failure `json:"delivery_failure,omitempty"`
	// AuditStatus and AuditFailure: how the replay's own audit record went.
	AuditStatus  string   `json:"audit_status,omitempty"`
	AuditFailure *Failure `json:"audit_failure,omitempty"`
}

// replayAllResult is the answer to a tenant-wide replay.
type replayAllResult struct {
	TenantID  string   `json:"tenant_id"`
	Replayed  int      `json:"replayed"`
	Delivered int      `json:"delivered"`
	Pending   int      `json:"pending"`
	Dead      int      `json:"dead"`
	More      bool     `json:"more"` // the tenant had more dead letters than MaxReplayBatch: call again
	EventIDs  []string `json:"event_ids"`
	// AuditStatus: logged when every replay's audit record was delivered,
	// queued when one waits in the outbox.
	AuditStatus string `json:"audit_status,omitempty"`
}

// outboxTenant is the tenant whose outbox a request addresses: the
// caller's, or ?tenant=<id> for a holder of Outbox.Replay.All. Naming
// another tenant without that role is 403, answered before anything is
// read, so it tells nothing about that tenant's outbox.
func (a *App) outboxTenant(w http.ResponseWriter, r *http.Request, id *entraauth.Identity) (string, bool) {
	q := r.URL.Query()
	if !q.Has("tenant") {
		return id.TenantID, true
	}
	tenant := q.Get("tenant")
	switch {
	case len(q["tenant"]) > 1 || !guidPattern.MatchString(tenant):
		web.BadRequest(w, "tenant must be one tenant id (a lowercase GUID)")
		return "", false
	case tenant == id.TenantID:
		return tenant, true
	case !id.HasRole(RoleOutboxReplayAll):
		a.log.InfoContext(r.Context(), "outbox: another tenant's outbox refused", "oid", id.ObjectID, "tid", id.TenantID, "tenant", tenant)
		problem.Error(w, http.StatusForbidden, "another tenant's outbox needs the "+RoleOutboxReplayAll+" role")
		return "", false
	}
	return tenant, true
}

// noBody refuses a request body (a replay is named by its URL), reading at
// most one byte of it, however large it is.
func noBody(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength > 0 {
		web.BadRequest(w, "send no body: the URL names what to replay")
		return false
	}
	if n, _ := io.ReadFull(r.Body, make([]byte, 1)); n > 0 {
		web.BadRequest(w, "send no body: the URL names what to replay")
		return false
	}
	return true
}

// replayOne serves POST /api/outbox/{id}/replay: the tenant's dead event
// back to pending, then delivered at once. Repeating it is harmless: a
// pending event is answered as it is (replayed false), a delivered one has
// left the outbox (404), and the Audit Service keeps one entry per event.
func (a *App) replayOne(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	tenant, ok := a.outboxTenant(w, r, id)
	if !ok || !noBody(w, r) {
		return
	}
	eventID := r.PathValue("id")
	if !guidPattern.MatchString(eventID) {
		web.BadRequest(w, "the event id must be an outbox event id (a lowercase GUID)")
		return
	}
	ev, audit, replayed, err := a.replayEvent(r.Context(), id, tenant, eventID)
	if err != nil {
		web.LogFailure(a.log, r, "outbox: replay failed", err, "tenant", tenant, "event_id", eventID)
		web.StoreError(w, err)
		return
	}
	res := replayResult{EventID: ev.EventID, TenantID: ev.TenantID, Action: ev.Action, Replayed: replayed, State: ev.State}
	if replayed {
		evs := []store.OutboxEvent{ev}
		if audit != nil {
			evs = append(evs, *audit)
		}
		states, failures := a.deliverReplayed(r.Context(), evs)
		res.State, res.DeliveryFailure = states[ev.EventID], failures[ev.EventID]
		if audit != nil {
			res.AuditStatus, res.AuditFailure = auditStatus(states[audit.EventID]), failures[audit.EventID]
		}
	}
	a.log.InfoContext(r.Context(), "outbox: replay", "tenant", tenant, "event_id", eventID, "replayed", replayed, "state", res.State,
		"operator_oid", id.ObjectID, "operator_tid", id.TenantID)
	web.WriteJSON(w, http.StatusOK, res)
}

// replayAll serves POST /api/outbox/replay: up to MaxReplayBatch of the
// tenant's dead letters back to pending, each with its audit record, then
// delivered at once.
func (a *App) replayAll(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	tenant, ok := a.outboxTenant(w, r, id)
	if !ok || !noBody(w, r) {
		return
	}
	page, err := a.store.ListOutbox(r.Context(), tenant, store.OutboxDead, MaxReplayBatch, "")
	if err != nil {
		web.LogFailure(a.log, r, "outbox: replay failed", err, "tenant", tenant)
		web.StoreError(w, err)
		return
	}
	res := replayAllResult{TenantID: tenant, More: page.Next != "", EventIDs: []string{}}
	var moved, audits []store.OutboxEvent
	for _, dead := range page.Items {
		ev, audit, replayed, err := a.replayEvent(r.Context(), id, tenant, dead.EventID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !replayed {
			continue // delivered or replayed meanwhile
		}
		if err != nil {
			if len(moved) == 0 {
				web.LogFailure(a.log, r, "outbox: replay failed", err, "tenant", tenant)
				web.StoreError(w, err)
				return
			}
			// What moved is delivered and answered; the rest stays dead.
			a.log.WarnContext(r.Context(), "outbox: replay stopped by a store error", "tenant", tenant, "replayed", len(moved), "error", err.Error())
			res.More = true
			break
		}
		moved = append(moved, ev)
		if audit != nil {
			audits = append(audits, *audit)
		}
	}
	states, _ := a.deliverReplayed(r.Context(), append(append([]store.OutboxEvent{}, moved...), audits...))
	res.count(moved, audits, states)
	a.log.InfoContext(r.Context(), "outbox: replay", "tenant", tenant, "replayed", res.Replayed, "delivered", res.Delivered, "more", res.More,
		"operator_oid", id.ObjectID, "operator_tid", id.TenantID)
	web.WriteJSON(w, http.StatusOK, res)
}

// count fills in how the moved events and their audit records went.
func (res *replayAllResult) count(moved, audits []store.OutboxEvent, states map[string]string) {
	for _, ev := range moved {
		res.Replayed++
		res.EventIDs = append(res.EventIDs, ev.EventID)
		switch states[ev.EventID] {
		case delivered:
			res.Delivered++
		case store.OutboxDead:
			res.Dead++
		default:
			res.Pending++
		}
	}
	if len(audits) > 0 {
		res.AuditStatus = AuditLogged
	}
	for _, au := range audits {
		if states[au.EventID] != delivered {
			res.AuditStatus = AuditQueued
		}
	}
}

func auditStatus(state string) string {
	if state == delivered {
		return AuditLogged
	}
	return AuditQueued
}

// replayEvent moves the tenant's dead event back to pending, due once the
// request's own delivery attempt is over, with its audit record (action
// outbox.replay, the operator as actor) in the same transaction. audit is
// nil when nothing was moved, and when the event is itself a replay's
// audit record (the store writes none then: auditing its replay again
// could go on without end).
func (a *App) replayEvent(ctx context.Context, id *entraauth.Identity, tenant, eventID string) (
	ev store.OutboxEvent, audit *store.OutboxEvent, replayed bool, err error) {
	rec := a.event(ctx, id, store.ActionOutboxReplay)
	rec.TenantID = tenant
	if tenant != id.TenantID {
		rec.Actor = id.TenantID + "/" + id.ObjectID // a user of another tenant: say which
	}
	next := a.now().Add(a.cfg.DownstreamTimeout + time.Second)
	ev, replayed, err = a.store.ReplayDead(ctx, tenant, eventID, next, &rec)
	if err != nil || !replayed || ev.Action == store.ActionOutboxReplay {
		return ev, nil, replayed, err
	}
	return ev, &rec, true, nil
}

// deliverReplayed delivers evs at once, SweepConcurrency at a time, under
// one DownstreamTimeout (the caller going away does not cut it short), and
// settles each as the sweep does. It returns each event's state by id:
// delivered, pending or dead, and the failures. An event not started in
// time is left as it is: pending, due for the sweep.
func (a *App) deliverReplayed(reqCtx context.Context, evs []store.OutboxEvent) (map[string]string, map[string]*Failure) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), a.cfg.DownstreamTimeout)
	defer cancel()
	states, failures := make(map[string]string, len(evs)), map[string]*Failure{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(SweepConcurrency)
	for _, ev := range evs {
		g.Go(func() error {
			state, f := store.OutboxPending, (*Failure)(nil)
			if ctx.Err() == nil {
				f = a.deliverAudit(ctx, ev)
				sctx, scancel := context.WithTimeout(context.WithoutCancel(reqCtx), 2*time.Second)
				state = a.settle(sctx, ev, f)
				scancel()
			}
			mu.Lock()
			defer mu.Unlock()
			states[ev.EventID] = state
			if f != nil {
				failures[ev.EventID] = f
			}
			return nil
		})
	}
	_ = g.Wait()
	return states, failures
}
