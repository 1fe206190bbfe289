package taskapi

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/internal/store"
)

// ScopeName is the OpenTelemetry instrumentation scope of the Task API's
// own spans and metrics.
const ScopeName = "github.com/handoff-dev/handoff/internal/taskapi"

// outboxDepthTimeout bounds the outbox read behind the outbox gauges, each
// time a metric reader collects them.
const outboxDepthTimeout = 5 * time.Second

// Downstream services, as spans and metrics name them.
const (
	serviceNotification = "notification"
	serviceAudit        = "audit"
)

// Attributes of the Task API's spans and metrics.
const (
	attrService = attribute.Key("handoff.downstream.service") // notification | audit
	attrOutcome = attribute.Key("handoff.downstream.outcome") // ok | a Failure reason
	attrState   = attribute.Key("handoff.outbox.state")       // pending | dead
	attrResult  = attribute.Key("handoff.outbox.result")      // delivered | pending | dead
	attrTenant  = attribute.Key("handoff.tenant.id")
)

// telemetry is what the Task API reports: spans of its downstream calls,
// sweeps and redeliveries, and its metrics (docs/telemetry.md lists them).
type telemetry struct {
	tracer       trace.Tracer
	downstream   metric.Int64Counter
	redeliveries metric.Int64Counter
	deadLetters  metric.Int64Counter
	callNames    map[string]string // service → span name
}

// newTelemetry makes the instruments, and registers the outbox gauges,
// which read the store's depth only when a reader collects them (never
// with the global no-op provider).
func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, st Store) *telemetry {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	t := &telemetry{tracer: tp.Tracer(ScopeName),
		callNames: map[string]string{serviceNotification: "notification.send", serviceAudit: "audit.deliver"}}
	var errs [6]error
	t.downstream, errs[0] = m.Int64Counter("handoff.downstream.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Calls to the Notification and Audit Services, by service and outcome (ok, or the failure's reason)."))
	t.redeliveries, errs[1] = m.Int64Counter("handoff.outbox.redeliveries", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events the sweep tried to deliver again, by result (delivered, pending, dead)."))
	t.deadLetters, errs[2] = m.Int64Counter("handoff.outbox.dead_letters", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events moved to the dead-letter state."))
	events, err := m.Int64ObservableGauge("handoff.outbox.events", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events in the outbox, by state (pending, dead), each counted up to 10,000."))
	errs[3] = err
	age, err := m.Float64ObservableGauge("handoff.outbox.oldest_pending.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest pending audit event; 0 when none is pending."))
	errs[4] = err
	_, errs[5] = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, outboxDepthTimeout)
		defer cancel()
		d, err := st.OutboxDepth(ctx, "")
		if err != nil {
			return err // the reader reports it; the gauges skip this collection
		}
		o.ObserveInt64(events, int64(d.Pending), metric.WithAttributes(attrState.String(store.OutboxPending)))
		o.ObserveInt64(events, int64(d.Dead), metric.WithAttributes(attrState.String(store.OutboxDead)))
		var oldest float64
		if !d.OldestPending.IsZero() {
			oldest = max(time.Since(d.OldestPending).Seconds(), 0)
		}
		o.ObserveFloat64(age, oldest)
		return nil
	}, events, age)
	for _, err := range errs {
		if err != nil {
			otel.Handle(err) // a no-op instrument stands in
		}
	}
	return t
}

var callSpanKind = trace.WithSpanKind(trace.SpanKindClient)

// startCall starts the span of one call to a downstream service: its
// token, its request (the traceparent sent is this span's) and a retry
// with a new token.
func (t *telemetry) startCall(ctx context.Context, service string) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, t.callNames[service], callSpanKind)
	if span.IsRecording() {
		span.SetAttributes(attrService.String(service))
	}
	return ctx, span
}

// endCall ends a call's span and counts its outcome.
func (t *telemetry) endCall(ctx context.Context, span trace.Span, service string, f *Failure) {
	defer span.End()
	recording, metered := span.IsRecording(), t.downstream.Enabled(ctx)
	if !recording && !metered {
		return
	}
	outcome := "ok"
	if f != nil {
		outcome = f.Reason
	}
	if recording {
		span.SetAttributes(attrOutcome.String(outcome))
		if f != nil {
			span.SetStatus(codes.Error, f.Reason)
		}
	}
	if metered {
		t.downstream.Add(ctx, 1, metric.WithAttributes(attrService.String(service), attrOutcome.String(outcome)))
	}
}

// recordStatus records on the call's span the status a downstream service
// answered (the last one, when a refused token was replaced).
func recordStatus(ctx context.Context, status int) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
}

// injectTraceContext puts ctx's trace context on a downstream request
// (traceparent, tracestate) with the global propagator.
func injectTraceContext(ctx context.Context, h propagation.HeaderCarrier) {
	otel.GetTextMapPropagator().Inject(ctx, h)
}

// eventCarrier is an outbox event's trace context as a TextMapCarrier:
// W3C Trace Context, whatever the global propagator, since the store keeps
// the two W3C headers.
type eventCarrier struct{ ev *store.OutboxEvent }

func (c eventCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.ev.Traceparent
	case "tracestate":
		return c.ev.Tracestate
	}
	return ""
}

func (c eventCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.ev.Traceparent = value
	case "tracestate":
		c.ev.Tracestate = value
	}
}

func (c eventCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// traceInto records the trace context of the request writing ev on it:
// the span the request is in (with no SDK, the caller's traceparent
// passed through), or nothing when it has none. A tracestate longer than
// the store keeps is dropped, never the write.
func traceInto(ctx context.Context, ev *store.OutboxEvent) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, eventCarrier{ev})
	if len(ev.Tracestate) > store.MaxTracestateLength {
		ev.Tracestate = ""
	}
}

// createContext is the span context of the request that wrote ev, from
// its stored traceparent; ok is false when it has none or it is malformed.
func createContext(ev store.OutboxEvent) (sc trace.SpanContext, ok bool) {
	if ev.Traceparent == "" {
		return trace.SpanContext{}, false
	}
	sc = trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), eventCarrier{&ev}))
	return sc, sc.IsValid()
}

// startRedelivery starts the span of a sweep's delivery of ev, named
// outbox.redeliver.
//
// It continues the trace of the request that wrote the event: its parent
// is that request's span (the stored traceparent), so the delivery, the
// traceparent it sends the Audit Service and every log line of both carry
// the create's trace id, with or without an SDK (with the no-op providers
// the stored context itself passes through). An operator who looks up
// the create's trace id finds the request and, hours later maybe, the
// delivery that settled its audit event. The span links to the create's
// span context (the messaging conventions' creation context, with
// messaging.message.id, so tools that show links find it whatever the
// parent) and to the sweep run that delivered it, whose own trace shows
// the run.
//
// A stored value that is missing or malformed (an event written before
// trace contexts were kept, a corrupted row) gives no parent and no link:
// the span is then a child of the sweep run, and the delivery goes on.
func (t *telemetry) startRedelivery(ctx context.Context, ev store.OutboxEvent) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	sweep := trace.SpanContextFromContext(ctx)
	if create, ok := createContext(ev); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, create)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: create,
			Attributes: []attribute.KeyValue{semconv.MessagingMessageID(ev.EventID)}}))
		if sweep.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sweep,
				Attributes: []attribute.KeyValue{attribute.String("handoff.link", "sweep")}}))
		}
	}
	ctx, span := t.tracer.Start(ctx, "outbox.redeliver", opts...)
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingMessageID(ev.EventID), attrTenant.String(ev.TenantID),
			attribute.Int("handoff.outbox.attempts", ev.Attempts))
	}
	return ctx, span
}

// endRedelivery ends a redelivery's span with what became of the event.
func (t *telemetry) endRedelivery(ctx context.Context, span trace.Span, state string) {
	result := state
	if state == delivered {
		result = "delivered"
	}
	if span.IsRecording() {
		span.SetAttributes(attrResult.String(result))
		if state != delivered {
			span.SetStatus(codes.Error, "not delivered")
		}
	}
	span.End()
	if t.redeliveries.Enabled(ctx) {
		t.redeliveries.Add(ctx, 1, metric.WithAttributes(attrResult.String(result)))
	}
}

// deadLettered counts an event moved to the dead-letter state.
func (t *telemetry) deadLettered(ctx context.Context) {
	t.deadLetters.Add(ctx, 1)
}
