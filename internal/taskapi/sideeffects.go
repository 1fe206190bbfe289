package taskapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/internal/store"
)

// The paths a write posts to, under the services' URLs.
const (
	notifyPath = "/api/notify"
	auditPath  = "/api/audit"
)

// maxDownstreamBody bounds what is read of a downstream answer.
const maxDownstreamBody = 64 << 10

// notice is the notification a write sends: event, about task, to the
// user the request's identity names, with its call started by
// startNotification.
type notice struct {
	event string
	task  store.Task
	call  *notificationCall
}

// notificationCall is a create's call to the Notification Service, started
// before the task's commit so that its On-Behalf-Of token is acquired
// while the commit runs: the token request is a round trip to Entra ID, the
// longest step of a user's first create in a process (the first create
// after a cold start among them), and it no longer waits for the commit
// (make bench-load's cold start, docs/performance.md).
type notificationCall struct {
	span   trace.Span // notification.send: the token, then the request
	cancel context.CancelFunc
	done   chan struct{} // closed once tok and err are set
	tok    downstream.Token
	err    error
	sent   bool // notify took the call over and ends its span (both on the create's goroutine)
}

// startNotification starts the notification's span and its On-Behalf-Of
// token's acquisition, in the background, under its own copy of the side
// effects' deadline (DownstreamTimeout, which the caller going away does not
// cut short): the goroutine ends by then whatever happens to the create.
// Start it only for a create that was authorized and whose input is valid;
// end it with finish.
func (a *App) startNotification(reqCtx context.Context, id *entraauth.Identity) *notificationCall {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), a.cfg.DownstreamTimeout)
	ctx, span := a.tel.startCall(ctx, serviceNotification)
	c := &notificationCall{span: span, cancel: cancel, done: make(chan struct{})}
	// A user's creates after the first find the token cached: nothing to
	// overlap, so neither a goroutine nor the yield below (which, under
	// load, would send every create to the back of the run queue).
	if tok, ok := a.tokens.CachedOnBehalfOf(ctx, id.Token, id.TenantID, a.cfg.Notification.Scope); ok {
		c.tok = tok
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		c.tok, c.err = a.tokens.OnBehalfOf(ctx, id.Token, id.TenantID, a.cfg.Notification.Scope)
	}()
	// Let the token request go out before the commit takes this goroutine's
	// processor: otherwise the new goroutine usually waits for the commit
	// to end (measured: docs/performance.md), and nothing overlaps.
	runtime.Gosched()
	return c
}

// token waits for the call's token, at most until ctx ends.
func (c *notificationCall) token(ctx context.Context) (downstream.Token, error) {
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return downstream.Token{}, ctx.Err()
	}
}

// notSentEvent marks the span of a notification call finish ended.
const notSentEvent = "not sent: the create stored no new task"

// finish ends a call notify did not send (the create failed, or replayed a
// prior answer: neither notifies): its token request, if still running, is
// no longer waited for, and its span ends, not counted as a call. A token
// it got stays in the token cache, harmless: the user's next create uses it
// (and a replay, sent with the token of the create it repeats, finds that
// create's token there and asks Entra ID for nothing).
func (c *notificationCall) finish() {
	c.cancel()
	if !c.sent {
		c.span.AddEvent(notSentEvent)
		c.span.End()
	}
}

// sideEffects sends n (when there is one: creates notify, other writes do
// not) and delivers the audit event ev, in parallel, under one deadline
// that the caller going away does not cut short, then settles ev: an
// event not delivered stays in the outbox ("queued") for the sweep.
func (a *App) sideEffects(reqCtx context.Context, id *entraauth.Identity, ev store.OutboxEvent, n *notice) outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), a.cfg.DownstreamTimeout)
	defer cancel()
	var out outcome
	var wg sync.WaitGroup
	wg.Go(func() {
		out.AuditFailure = a.deliverAudit(ctx, ev)
		// Recording the outcome gets its own short deadline: the delivery
		// may have used all of the shared one.
		mctx, mcancel := context.WithTimeout(context.WithoutCancel(reqCtx), 2*time.Second)
		defer mcancel()
		out.AuditStatus = AuditLogged
		if a.settle(mctx, ev, out.AuditFailure) != delivered {
			out.AuditStatus = AuditQueued
		}
	})
	// The notification in this goroutine, the audit event in the other: a
	// goroutine of its own for each grew a fresh stack for the HTTP call
	// every time (about 2% of the Task API's CPU, docs/performance.md).
	if n != nil {
		out.NotificationStatus, out.NotificationFailure = NotificationSent, a.notify(ctx, id, n)
		if out.NotificationFailure != nil {
			out.NotificationStatus = NotificationFailed
		}
	}
	wg.Wait()
	return out
}

// notify calls the Notification Service On-Behalf-Of the user, with the
// token n's call acquired, in its span (notification.send) whose outcome is
// counted.
func (a *App) notify(ctx context.Context, id *entraauth.Identity, n *notice) (f *Failure) {
	span := n.call.span
	n.call.sent = true
	ctx = trace.ContextWithSpan(ctx, span)
	defer func() { a.tel.endCall(ctx, span, serviceNotification, f) }()
	tok, err := n.call.token(ctx)
	if err != nil {
		f := a.tokenFailure(ctx, id.TenantID, err)
		a.log.WarnContext(ctx, "notification: no token", "reason", f.Reason, "tenant", id.TenantID, "error", err.Error())
		return f
	}
	body := map[string]string{"event": n.event, "task_title": n.task.Title}
	refresh := func(ctx context.Context, rejected downstream.Token) (downstream.Token, error) {
		return a.tokens.RefreshOnBehalfOf(ctx, id.Token, id.TenantID, rejected, a.cfg.Notification.Scope)
	}
	if f := a.postRefreshing(ctx, a.cfg.Notification.URL+notifyPath, tok, body, refresh); f != nil {
		a.log.WarnContext(ctx, "notification: failed", "reason", f.Reason, "status", f.Status, "detail", f.Detail)
		return f
	}
	return nil
}

// deliverAudit sends an outbox event to the Audit Service as the Task API
// itself (client credentials), in a span (audit.deliver) whose outcome is
// counted. The event id makes a redelivery harmless.
func (a *App) deliverAudit(ctx context.Context, ev store.OutboxEvent) (f *Failure) {
	ctx, span := a.tel.startCall(ctx, serviceAudit)
	defer func() { a.tel.endCall(ctx, span, serviceAudit, f) }()
	tok, err := a.tokens.AppToken(ctx, a.cfg.Audit.Scope)
	if err != nil {
		f := a.tokenFailure(ctx, a.cfg.HomeTenantID, err)
		a.log.WarnContext(ctx, "audit: no token", "reason", f.Reason, "event_id", ev.EventID, "error", err.Error())
		return f
	}
	body := map[string]string{"event_id": ev.EventID, "action": ev.Action, "resource_id": ev.ResourceID, "actor": ev.Actor, "tenant_id": ev.TenantID}
	refresh := func(ctx context.Context, rejected downstream.Token) (downstream.Token, error) {
		return a.tokens.RefreshAppToken(ctx, rejected, a.cfg.Audit.Scope)
	}
	if f := a.postRefreshing(ctx, a.cfg.Audit.URL+auditPath, tok, body, refresh); f != nil {
		a.log.WarnContext(ctx, "audit: delivery failed", "reason", f.Reason, "status", f.Status, "detail", f.Detail, "event_id", ev.EventID)
		return f
	}
	return nil
}

// tokenFailure explains a token acquisition error for tenantID (the
// user's tenant for OBO, the home tenant for the app's own token).
func (a *App) tokenFailure(ctx context.Context, tenantID string, err error) *Failure {
	if challenge, ok := downstream.Challenge(err, a.cfg.Authority, tenantID, a.cfg.ClientID); ok {
		var cr *downstream.ConsentRequiredError
		if errors.As(err, &cr) {
			return &Failure{Reason: ReasonConsentRequired, Detail: "consent for the downstream API is missing in your tenant",
				Scopes: cr.Scopes, Claims: cr.Claims, Challenge: challenge}
		}
		var ir *downstream.InteractionRequiredError
		errors.As(err, &ir)
		return &Failure{Reason: ReasonInteractionRequired, Detail: "sign in again to continue",
			Scopes: ir.Scopes, Claims: ir.Claims, Challenge: challenge}
	}
	var ia *downstream.InvalidAssertionError
	var ce *downstream.CredentialError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return &Failure{Reason: ReasonTimeout, Detail: "the token request did not finish within the deadline"}
	case errors.As(err, &ia):
		return &Failure{Reason: ReasonInvalidToken, Detail: "your token could not be exchanged; sign in again"}
	case errors.As(err, &ce):
		return &Failure{Reason: ReasonConfiguration, Detail: "the Task API's credential was refused; its log names the fix"}
	case errors.Is(err, downstream.ErrTransient):
		return &Failure{Reason: ReasonUnavailable, Detail: "the token endpoint is unavailable"}
	}
	return &Failure{Reason: ReasonUnavailable, Detail: "no token for the downstream API"}
}

// postRefreshing posts, and when the service refuses the token itself
// (401 with error="invalid_token": signed by a key it no longer trusts,
// say) posts once more with the new token refresh gets. refresh is bounded
// by the token client (downstream.ErrRefreshLimited), so a service that
// refuses every token costs one token request per few seconds, not one per
// call.
func (a *App) postRefreshing(ctx context.Context, url string, tok downstream.Token, body any,
	refresh func(context.Context, downstream.Token) (downstream.Token, error)) *Failure {
	f, invalidToken := a.post(ctx, url, tok, body)
	if !invalidToken {
		return f
	}
	fresh, err := refresh(ctx, tok)
	if err != nil {
		a.log.WarnContext(ctx, "downstream: the service refused the token as invalid; no new token to retry with", "url", url, "error", err.Error())
		return f
	}
	f, _ = a.post(ctx, url, fresh, body)
	return f
}

// post sends body as JSON with the token and reads the answer; invalidToken
// reports a refusal of the token itself (downstream.InvalidTokenChallenge).
func (a *App) post(ctx context.Context, url string, tok downstream.Token, body any) (f *Failure, invalidToken bool) {
	b, err := json.Marshal(body)
	if err != nil {
		return &Failure{Reason: ReasonRejected, Detail: err.Error()}, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return &Failure{Reason: ReasonUnavailable, Detail: "bad downstream URL"}, false
	}
	req.Header.Set("Content-Type", "application/json")
	// The call's trace context (never on token requests: MSAL's client
	// sends none to Entra).
	injectTraceContext(ctx, propagation.HeaderCarrier(req.Header))
	tok.SetAuthHeader(req)
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &Failure{Reason: ReasonTimeout, Detail: "the service did not answer within the deadline"}, false
		}
		return &Failure{Reason: ReasonUnavailable, Detail: "the service could not be reached"}, false
	}
	defer resp.Body.Close()
	recordStatus(ctx, resp.StatusCode)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDownstreamBody))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		return nil, false
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return &Failure{Reason: ReasonUnavailable, Status: resp.StatusCode, Detail: fmt.Sprintf("the service answered %d", resp.StatusCode)}, false
	}
	return &Failure{Reason: ReasonRejected, Status: resp.StatusCode, Detail: fmt.Sprintf("the service refused the call (%d)", resp.StatusCode)},
		downstream.InvalidTokenChallenge(resp)
}

// newEventID is a UUIDv7, the audit entry's idempotency key: time-ordered,
// so the outbox's and the Audit Service's indexes on it grow at one end
// (store.NewUUIDv7).
func newEventID() string { return store.NewUUIDv7() }
