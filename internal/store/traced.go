package store

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the OpenTelemetry instrumentation scope of the store's spans.
const ScopeName = "github.com/handoff-dev/handoff/internal/store"

// Database systems, as Traced names them (db.system.name): SQLite's is the
// semantic conventions' value; Azure Table Storage has none, so it is ours.
const (
	SystemSQLite      = "sqlite"
	SystemAzureTables = "azure.tables"
)

// The operations Traced spans, each named store.<method>.
const (
	opCreateTask = iota
	opGetTask
	opListTasks
	opUpdateTask
	opDeleteTask
	opCreateTaskOnce
	opRecordIdempotentResponse
	opPurgeIdempotencyKeys
	opDueEvents
	opCountDue
	opMarkDelivered
	opMarkFailed
	opOutboxDepth
	opListOutbox
	opReplayDead
	opAddNotification
	opListNotifications
	opAppendAudit
	opListAudit
	opCount
)

var opNames = [opCount]string{
	"CreateTask", "GetTask", "ListTasks", "UpdateTask", "DeleteTask",
	"CreateTaskOnce", "RecordIdempotentResponse", "PurgeIdempotencyKeys",
	"DueEvents", "CountDue", "MarkDelivered", "MarkFailed", "OutboxDepth", "ListOutbox", "ReplayDead",
	"AddNotification", "ListNotifications", "AppendAudit", "ListAudit",
}

// Traced returns s with a client span around each of its operations,
// named store.<method>, with db.system.name (system: SystemSQLite or
// SystemAzureTables) and db.operation.name, and error.type when one fails
// (the span's status is an error only when the storage failed, not for a
// record not found, a changed ETag or invalid input). tp nil means the
// global provider. backend.Open returns its stores traced; methods a
// newer Store adds and Traced does not know yet pass through untraced.
func Traced(s Store, system string, tp trace.TracerProvider) Store {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &traced{Store: s, tracer: tp.Tracer(ScopeName)}
	sys := semconv.DBSystemNameKey.String(system)
	for i, name := range opNames {
		t.names[i] = "store." + name
		// Made once: starting a span allocates no options.
		t.starts[i] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(sys, semconv.DBOperationName(name))}
	}
	return t
}

type traced struct {
	Store
	tracer trace.Tracer
	names  [opCount]string
	starts [opCount][]trace.SpanStartOption
}

func (t *traced) start(ctx context.Context, op int) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, t.names[op], t.starts[op]...)
}

// end ends span with err's outcome and returns err.
func end(span trace.Span, err error) error {
	if err != nil && span.IsRecording() {
		kind := "unavailable"
		switch {
		case errors.Is(err, ErrNotFound):
			kind = "not_found"
		case errors.Is(err, ErrPreconditionFailed):
			kind = "precondition_failed"
		case errors.Is(err, ErrInvalid):
			kind = "invalid"
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(kind))
		if kind == "unavailable" {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	return err
}

func (t *traced) CreateTask(ctx context.Context, task Task, ev *OutboxEvent) (Task, error) {
	ctx, span := t.start(ctx, opCreateTask)
	out, err := t.Store.CreateTask(ctx, task, ev)
	return out, end(span, err)
}

func (t *traced) GetTask(ctx context.Context, tenantID, id string) (Task, error) {
	ctx, span := t.start(ctx, opGetTask)
	out, err := t.Store.GetTask(ctx, tenantID, id)
	return out, end(span, err)
}

func (t *traced) ListTasks(ctx context.Context, tenantID string, limit int, cursor string) (Page[Task], error) {
	ctx, span := t.start(ctx, opListTasks)
	out, err := t.Store.ListTasks(ctx, tenantID, limit, cursor)
	return out, end(span, err)
}

func (t *traced) UpdateTask(ctx context.Context, tenantID, id, ifMatch string, p TaskPatch, ev *OutboxEvent) (Task, error) {
	ctx, span := t.start(ctx, opUpdateTask)
	out, err := t.Store.UpdateTask(ctx, tenantID, id, ifMatch, p, ev)
	return out, end(span, err)
}

func (t *traced) DeleteTask(ctx context.Context, tenantID, id, ifMatch string, ev *OutboxEvent) error {
	ctx, span := t.start(ctx, opDeleteTask)
	return end(span, t.Store.DeleteTask(ctx, tenantID, id, ifMatch, ev))
}

func (t *traced) CreateTaskOnce(ctx context.Context, task Task, ev *OutboxEvent, idem Idempotency) (Task, *IdempotencyRecord, error) {
	ctx, span := t.start(ctx, opCreateTaskOnce)
	out, prior, err := t.Store.CreateTaskOnce(ctx, task, ev, idem)
	return out, prior, end(span, err)
}

func (t *traced) RecordIdempotentResponse(ctx context.Context, tenantID, userID, key, taskID string, status int, body []byte) error {
	ctx, span := t.start(ctx, opRecordIdempotentResponse)
	return end(span, t.Store.RecordIdempotentResponse(ctx, tenantID, userID, key, taskID, status, body))
}

func (t *traced) PurgeIdempotencyKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, span := t.start(ctx, opPurgeIdempotencyKeys)
	n, err := t.Store.PurgeIdempotencyKeys(ctx, now, limit)
	return n, end(span, err)
}

func (t *traced) DueEvents(ctx context.Context, now time.Time, limit int) ([]OutboxEvent, error) {
	ctx, span := t.start(ctx, opDueEvents)
	out, err := t.Store.DueEvents(ctx, now, limit)
	return out, end(span, err)
}

func (t *traced) CountDue(ctx context.Context, now time.Time) (int, error) {
	ctx, span := t.start(ctx, opCountDue)
	n, err := t.Store.CountDue(ctx, now)
	return n, end(span, err)
}

func (t *traced) MarkDelivered(ctx context.Context, tenantID, eventID string) error {
	ctx, span := t.start(ctx, opMarkDelivered)
	return end(span, t.Store.MarkDelivered(ctx, tenantID, eventID))
}

func (t *traced) MarkFailed(ctx context.Context, tenantID, eventID, reason string, next time.Time, dead bool) error {
	ctx, span := t.start(ctx, opMarkFailed)
	return end(span, t.Store.MarkFailed(ctx, tenantID, eventID, reason, next, dead))
}

func (t *traced) OutboxDepth(ctx context.Context, tenantID string) (OutboxDepth, error) {
	ctx, span := t.start(ctx, opOutboxDepth)
	d, err := t.Store.OutboxDepth(ctx, tenantID)
	return d, end(span, err)
}

func (t *traced) ListOutbox(ctx context.Context, tenantID, state string, limit int, cursor string) (Page[OutboxEvent], error) {
	ctx, span := t.start(ctx, opListOutbox)
	out, err := t.Store.ListOutbox(ctx, tenantID, state, limit, cursor)
	return out, end(span, err)
}

func (t *traced) ReplayDead(ctx context.Context, tenantID, eventID string, next time.Time, audit *OutboxEvent) (OutboxEvent, bool, error) {
	ctx, span := t.start(ctx, opReplayDead)
	ev, replayed, err := t.Store.ReplayDead(ctx, tenantID, eventID, next, audit)
	return ev, replayed, end(span, err)
}

func (t *traced) AddNotification(ctx context.Context, n Notification) (Notification, error) {
	ctx, span := t.start(ctx, opAddNotification)
	out, err := t.Store.AddNotification(ctx, n)
	return out, end(span, err)
}

func (t *traced) ListNotifications(ctx context.Context, tenantID, userOID string, limit int, cursor string) (Page[Notification], error) {
	ctx, span := t.start(ctx, opListNotifications)
	out, err := t.Store.ListNotifications(ctx, tenantID, userOID, limit, cursor)
	return out, end(span, err)
}

func (t *traced) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, bool, error) {
	ctx, span := t.start(ctx, opAppendAudit)
	out, created, err := t.Store.AppendAudit(ctx, e)
	return out, created, end(span, err)
}

func (t *traced) ListAudit(ctx context.Context, tenantID string, limit int, cursor string) (Page[AuditEntry], error) {
	ctx, span := t.start(ctx, opListAudit)
	out, err := t.Store.ListAudit(ctx, tenantID, limit, cursor)
	return out, end(span, err)
}
