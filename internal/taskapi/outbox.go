package taskapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/web"
)

// Outbox redelivery bounds.
const (
	// SweepBatch is how many due events one read of the outbox takes: a
	// sweep reads page after page until the outbox has no due event left
	// or its budget is spent.
	SweepBatch = 100
	// SweepConcurrency bounds the deliveries one sweep has in flight.
	SweepConcurrency = 8
	// SweepBudget bounds one sweep's run (the timer fires again later;
	// the schedule's default is once a minute).
	SweepBudget = 50 * time.Second
	// idempotencyPurgeBatch bounds the expired idempotency keys one sweep
	// deletes (expired keys are ignored meanwhile).
	idempotencyPurgeBatch = 1000
	// DefaultAuditRetryDelay is the wait before an event's second attempt;
	// each later wait doubles, up to retryMax.
	DefaultAuditRetryDelay = 30 * time.Second
	retryMax               = time.Hour
	// DefaultAuditMaxAttempts before an event that keeps failing is
	// dead-lettered: with the default delays, about two days of trying.
	DefaultAuditMaxAttempts = 60
	// deliveryTimeout bounds one event's delivery during a sweep.
	deliveryTimeout = 10 * time.Second
)

// nextAttempt spaces attempts exponentially (AUDIT_RETRY_DELAY, twice
// that … at most an hour), with jitter so events failed together are not
// retried together.
func nextAttempt(now time.Time, first time.Duration, attempts int) time.Time {
	d := min(first<<min(attempts, 16), retryMax)
	return now.Add(d + time.Duration(rand.Int64N(int64(d/10)+1)))
}

// settle records how a delivery went: delivered (the event leaves the
// outbox), or failed (and when to try again, or dead-lettered when
// rejected for good or out of attempts).
func (a *App) settle(ctx context.Context, ev store.OutboxEvent, f *Failure) (state string) {
	if f == nil {
		if err := a.store.MarkDelivered(ctx, ev.TenantID, ev.EventID); err != nil {
			// The Audit Service has it; a redelivery is harmless (idempotent).
			a.log.WarnContext(ctx, "audit: delivered but not marked", "event_id", ev.EventID, "error", err.Error())
		}
		return delivered
	}
	dead := f.permanent() || ev.Attempts+1 >= a.cfg.AuditMaxAttempts
	err := a.store.MarkFailed(ctx, ev.TenantID, ev.EventID, f.Reason+": "+f.Detail, nextAttempt(a.now(), a.cfg.AuditRetryDelay, ev.Attempts), dead)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Another delivery (a sweep, another instance) got it through meanwhile.
		return delivered
	case err != nil:
		a.log.ErrorContext(ctx, "audit: could not record a failed delivery; the event stays due", "event_id", ev.EventID, "error", err.Error())
	}
	if dead {
		a.log.ErrorContext(ctx, "audit: event dead-lettered", "event_id", ev.EventID, "tenant", ev.TenantID, "action", ev.Action,
			"attempts", ev.Attempts+1, "reason", f.Reason, "detail", f.Detail)
		a.deadLettered.Add(1)
		a.tel.deadLettered(ctx)
		return store.OutboxDead
	}
	return store.OutboxPending
}

// permanent: the Audit Service refused the event itself for good (a 4xx
// about the request): retrying cannot help. Refusals a fix of the
// deployment can cure are not: 401 and 403 (token, role), 404 (URL, a
// deploy under way), 408 and 429.
func (f *Failure) permanent() bool {
	switch f.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return f.Reason == ReasonRejected && f.Status >= 400 && f.Status < 500
}

// SweepResult counts one sweep's outcomes.
type SweepResult struct {
	Delivered, Retrying, DeadLettered int
	// Pages is how many reads of the outbox found events to deliver.
	Pages int
	// Left is how many events were still due when the sweep ended: 0
	// when it emptied the outbox, else what the budget left for the next
	// run (up to store.MaxCountDue).
	Left int
	// Purged is how many expired idempotency keys it deleted.
	Purged int
}

// Sweep redelivers due events, the longest-due first, page after page
// (SweepBatch events each, SweepConcurrency deliveries in flight) until no
// due event is left or its budget (SweepBudget) is spent; then it purges
// expired idempotency keys. The timer-triggered function runs it; it is
// safe to run on several instances at once (a delivery twice is one audit
// entry). Outcomes are recorded even when the budget ends mid-way; ending
// the budget is no error. The run is a span, outbox.sweep, and each
// delivery one of its own ([telemetry.startRedelivery]).
func (a *App) Sweep(ctx context.Context) (res SweepResult, err error) {
	ctx, span := a.tel.tracer.Start(ctx, "outbox.sweep")
	defer func() { endSweep(span, res, err) }()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SweepBudget)
	defer cancel()
	tried := map[string]bool{} // events this sweep settled: not again in this run
	emptied := false
	for ctx.Err() == nil {
		due, err := a.store.DueEvents(ctx, a.now(), SweepBatch)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return res, fmt.Errorf("sweep: %w", err)
		}
		var fresh []store.OutboxEvent
		for _, ev := range due {
			if !tried[ev.TenantID+"\x00"+ev.EventID] {
				fresh = append(fresh, ev)
			}
		}
		if len(fresh) == 0 {
			// Nothing due, or only events whose outcome could not be
			// recorded (they stay due for the next run).
			emptied = len(due) == 0
			break
		}
		res.Pages++
		a.deliverPage(ctx, fresh, &res)
		for _, ev := range fresh {
			tried[ev.TenantID+"\x00"+ev.EventID] = true
		}
	}
	// What is left, and the housekeeping, get a short time of their own.
	after, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer acancel()
	if !emptied {
		if n, err := a.store.CountDue(after, a.now()); err == nil {
			res.Left = n
		} else {
			a.log.WarnContext(ctx, "audit sweep: could not count the events left", "error", err.Error())
		}
	}
	if n, err := a.store.PurgeIdempotencyKeys(after, a.now(), idempotencyPurgeBatch); err == nil {
		res.Purged = n
	} else {
		a.log.WarnContext(ctx, "audit sweep: could not purge expired idempotency keys", "error", err.Error())
	}
	return res, nil
}

// deliverPage delivers a page of events, SweepConcurrency at a time, and
// records each outcome (even once ctx has ended). An event not started
// before ctx ends stays due.
func (a *App) deliverPage(ctx context.Context, evs []store.OutboxEvent, res *SweepResult) {
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(SweepConcurrency)
	for _, ev := range evs {
		if ctx.Err() != nil {
			break // the rest stay due for the next run
		}
		g.Go(func() error {
			state := a.redeliver(ctx, ev)
			mu.Lock()
			defer mu.Unlock()
			switch state {
			case delivered:
				res.Delivered++
			case store.OutboxDead:
				res.DeadLettered++
			default:
				res.Retrying++
			}
			return nil
		})
	}
	_ = g.Wait()
}

// redeliver delivers one due event in its own span (in the trace of the
// request that wrote it: see [telemetry.startRedelivery]), records the
// outcome, and logs it in one line with that trace's id.
func (a *App) redeliver(ctx context.Context, ev store.OutboxEvent) (state string) {
	ctx, span := a.tel.startRedelivery(ctx, ev)
	defer func() { a.tel.endRedelivery(ctx, span, state) }()
	dctx, dcancel := context.WithTimeout(ctx, deliveryTimeout)
	f := a.deliverAudit(dctx, ev)
	dcancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	state = a.settle(sctx, ev, f)
	scancel()
	result := state
	if state == delivered {
		result = "delivered"
	}
	a.log.InfoContext(ctx, "audit: event redelivered", "event_id", ev.EventID, "tenant", ev.TenantID, "action", ev.Action,
		"attempt", ev.Attempts+1, "result", result)
	return state
}

// endSweep ends a sweep's span with its counts.
func endSweep(span trace.Span, res SweepResult, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("handoff.sweep.delivered", res.Delivered), attribute.Int("handoff.sweep.retrying", res.Retrying),
			attribute.Int("handoff.sweep.dead_lettered", res.DeadLettered), attribute.Int("handoff.sweep.left", res.Left),
			attribute.Int("handoff.sweep.pages", res.Pages))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// sweepHandler is the timer-triggered function's handler.
func (a *App) sweepHandler() http.Handler {
	return funcapp.Timer("timer", func(ctx context.Context, info funcapp.TimerInfo) ([]string, error) {
		res, err := a.Sweep(ctx)
		logs := []string{fmt.Sprintf("audit sweep: %d delivered, %d retrying, %d dead-lettered, %d left due, in %d pages; %d expired idempotency keys purged (%d dead-lettered since start; past due: %v)",
			res.Delivered, res.Retrying, res.DeadLettered, res.Left, res.Pages, res.Purged, a.DeadLettered(), info.IsPastDue)}
		a.log.InfoContext(ctx, "audit sweep", "delivered", res.Delivered, "retrying", res.Retrying, "dead_lettered", res.DeadLettered,
			"left", res.Left, "pages", res.Pages, "idempotency_keys_purged", res.Purged, "dead_lettered_since_start", a.DeadLettered())
		return logs, err
	}, a.telOpts...)
}

// outboxList lists a tenant's outbox events in a state (default dead):
// what an Admin of the tenant or an operator looks at. The tenant is the
// caller's, or ?tenant= for a holder of Outbox.Replay.All (outboxTenant).
func (a *App) outboxList(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	tenant, ok := a.outboxTenant(w, r, id)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	if state == "" {
		state = store.OutboxDead
	}
	if state != store.OutboxDead && state != store.OutboxPending {
		web.BadRequest(w, "state must be dead or pending")
		return
	}
	limit, cursor, ok := web.Page(w, r)
	if !ok {
		return
	}
	page, err := a.store.ListOutbox(r.Context(), tenant, state, limit, cursor)
	if err != nil {
		web.StoreError(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, web.NewList(page.Items, page.Next))
}
