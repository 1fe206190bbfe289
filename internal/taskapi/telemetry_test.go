package taskapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/store"
)

const (
	clientTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientParent = "00f067aa0ba902b7-01"
)

// tracedHarness is the harness with the Task API's spans and metrics
// recorded in memory, and its log lines kept.
func tracedHarness(t *testing.T) (*harness, *tracetest.InMemoryExporter, *sdkmetric.ManualReader, *logBuffer) {
	t.Helper()
	// What main does (internal/telemetry): outbound calls inject with the
	// global propagator.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h := newHarness(t, func(c *Config) { c.TracerProvider, c.MeterProvider = tp, mp })
	logs := &logBuffer{}
	h.app.log = slog.New(funcapp.NewLogHandler(logs, logs, nil))
	return h, exp, reader, logs
}

func spanNamed(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// logLines returns the JSON log lines whose msg is msg.
func logLines(t *testing.T, logs *logBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// queuedCreate creates a task with the client's traceparent while the
// Audit Service answers 503, and returns the queued event.
func queuedCreate(t *testing.T, h *harness) store.OutboxEvent {
	t.Helper()
	h.auditFault.Store(http.StatusServiceUnavailable)
	r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"traced"}`, "traceparent", "00-"+clientTrace+"-"+clientParent)
	if r.status != http.StatusCreated || r.body["audit_status"] != AuditQueued {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	h.auditFault.Store(0)
	page, err := h.st.ListOutbox(t.Context(), entra.HomeTenantID, store.OutboxPending, store.MaxPageSize, "")
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("pending: %+v, %v", page.Items, err)
	}
	return page.Items[0]
}

// TestRedeliveryContinuesTheCreatesTrace: the create's trace context is
// stored with its event; the sweep's redelivery is a span in that trace
// (child of the create's server span, linked to it and to the sweep run),
// sends that trace's traceparent to the Audit Service and logs its id.
func TestRedeliveryContinuesTheCreatesTrace(t *testing.T) {
	h, exp, _, logs := tracedHarness(t)
	ev := queuedCreate(t, h)
	server := spanNamed(exp.GetSpans(), "POST /api/tasks")
	if len(server) != 1 || server[0].SpanContext.TraceID().String() != clientTrace {
		t.Fatalf("the create's server span: %+v", server)
	}
	wantStored := "00-" + clientTrace + "-" + server[0].SpanContext.SpanID().String() + "-01"
	if ev.Traceparent != wantStored {
		t.Fatalf("stored traceparent %q, want the create's span %q", ev.Traceparent, wantStored)
	}
	if created := logLines(t, logs, "task: created"); len(created) != 1 || created[0]["trace_id"] != clientTrace || created[0]["audit_status"] != AuditQueued {
		t.Errorf("the create's log line: %v", created)
	}

	exp.Reset()
	h.clock.Advance(time.Hour)
	res, err := h.app.Sweep(t.Context())
	if err != nil || res.Delivered != 1 || h.auditCount(t) != 1 {
		t.Fatalf("sweep: %+v, %v, %d entries", res, err, h.auditCount(t))
	}
	spans := exp.GetSpans()
	sweep, redeliver := spanNamed(spans, "outbox.sweep"), spanNamed(spans, "outbox.redeliver")
	if len(sweep) != 1 || len(redeliver) != 1 {
		t.Fatalf("spans: %d sweeps, %d redeliveries", len(sweep), len(redeliver))
	}
	rd := redeliver[0]
	if rd.SpanContext.TraceID().String() != clientTrace || rd.Parent.SpanID() != server[0].SpanContext.SpanID() {
		t.Errorf("redelivery in trace %s under %s; want the create's trace %s under its span %s",
			rd.SpanContext.TraceID(), rd.Parent.SpanID(), clientTrace, server[0].SpanContext.SpanID())
	}
	if len(rd.Links) != 2 || rd.Links[0].SpanContext.SpanID() != server[0].SpanContext.SpanID() ||
		rd.Links[1].SpanContext.SpanID() != sweep[0].SpanContext.SpanID() {
		t.Errorf("redelivery links %+v; want the create's span, then the sweep's", rd.Links)
	}
	if got := attrs(rd.Links[0].Attributes); got["messaging.message.id"] != ev.EventID {
		t.Errorf("the link to the create: %v", got)
	}
	if got := attrs(rd.Attributes); got["handoff.outbox.result"] != "delivered" || got["messaging.message.id"] != ev.EventID {
		t.Errorf("redelivery attributes %v", got)
	}
	deliver := spanNamed(spans, "audit.deliver")
	if len(deliver) != 1 || deliver[0].Parent.SpanID() != rd.SpanContext.SpanID() {
		t.Fatalf("audit.deliver spans %+v; want one under the redelivery", deliver)
	}
	if got := attrs(deliver[0].Attributes); got["http.response.status_code"] != "201" || got["handoff.downstream.outcome"] != "ok" {
		t.Errorf("audit.deliver attributes %v", got)
	}
	seen := h.auditSeen.list()
	if got, want := seen[len(seen)-1], "00-"+clientTrace+"-"+deliver[0].SpanContext.SpanID().String()+"-01"; got != want {
		t.Errorf("the Audit Service got traceparent %q, want %q", got, want)
	}
	lines := logLines(t, logs, "audit: event redelivered")
	if len(lines) != 1 || lines[0]["trace_id"] != clientTrace || lines[0]["event_id"] != ev.EventID || lines[0]["result"] != "delivered" {
		t.Errorf("redelivery log lines: %v", lines)
	}
}

// TestRedeliveryWithAMalformedTraceparent: an event whose stored trace
// context is malformed (or missing) is delivered all the same, in a span
// of the sweep's own trace, with no link.
func TestRedeliveryWithAMalformedTraceparent(t *testing.T) {
	h, exp, _, logs := tracedHarness(t)
	for _, tp := range []string{"00-" + clientTrace + "-zzzzzzzzzzzzzzzz-01", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""} {
		ev := store.OutboxEvent{EventID: newEventID(), Action: "task.created", Actor: entra.AliceOID, Traceparent: tp, Tracestate: "x=1"}
		if _, err := h.st.CreateTask(t.Context(), store.Task{TenantID: entra.HomeTenantID, Title: "old", CreatedBy: entra.AliceOID}, &ev); err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.app.Sweep(t.Context())
	if err != nil || res.Delivered != 4 || h.auditCount(t) != 4 {
		t.Fatalf("sweep: %+v, %v, %d entries; want every event delivered", res, err, h.auditCount(t))
	}
	spans := exp.GetSpans()
	sweep := spanNamed(spans, "outbox.sweep")
	if len(sweep) != 1 {
		t.Fatalf("%d sweep spans", len(sweep))
	}
	for _, rd := range spanNamed(spans, "outbox.redeliver") {
		if len(rd.Links) != 0 || rd.Parent.SpanID() != sweep[0].SpanContext.SpanID() || rd.SpanContext.TraceID() != sweep[0].SpanContext.TraceID() {
			t.Errorf("redelivery of an event without a usable trace context: links %v, parent %s, trace %s; want none, the sweep's",
				rd.Links, rd.Parent.SpanID(), rd.SpanContext.TraceID())
		}
	}
	if n := len(logLines(t, logs, "audit: event redelivered")); n != 4 {
		t.Errorf("%d redelivery log lines, want 4", n)
	}
}

// TestTraceContextWithoutSDK: with the global no-op providers (export off)
// the client's traceparent still passes through: stored with the event,
// sent to both services, and in the log lines of the create and of the
// redelivery.
func TestTraceContextWithoutSDK(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	h := newHarness(t, nil)
	logs := &logBuffer{}
	h.app.log = slog.New(funcapp.NewLogHandler(logs, logs, nil))
	ev := queuedCreate(t, h)
	want := "00-" + clientTrace + "-" + clientParent
	if ev.Traceparent != want {
		t.Errorf("stored traceparent %q, want the client's %q", ev.Traceparent, want)
	}
	if seen := h.notifySeen.list(); len(seen) != 1 || seen[0] != want {
		t.Errorf("the Notification Service got %q, want %q", seen, want)
	}
	h.clock.Advance(time.Hour)
	if res, err := h.app.Sweep(t.Context()); err != nil || res.Delivered != 1 {
		t.Fatalf("sweep: %+v, %v", res, err)
	}
	if seen := h.auditSeen.list(); len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("the Audit Service got %q, want %q twice (the create's attempt, the redelivery)", seen, want)
	}
	for _, msg := range []string{"task: created", "audit: event redelivered"} {
		if lines := logLines(t, logs, msg); len(lines) != 1 || lines[0]["trace_id"] != clientTrace {
			t.Errorf("%q lines: %v", msg, lines)
		}
	}
}

// TestTaskAPIMetrics: the requests by route and status, the downstream
// outcomes, the outbox gauges and the dead letters, read with a manual
// reader.
func TestTaskAPIMetrics(t *testing.T) {
	h, _, reader, _ := tracedHarness(t)
	queuedCreate(t, h)
	h.auditFault.Store(http.StatusBadRequest) // refused for good: dead-lettered
	if r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"doomed"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d", r.status)
	}
	h.auditFault.Store(0)
	if r := h.do(t, "GET", "/api/tasks/missing", h.alice, ""); r.status != http.StatusNotFound {
		t.Fatalf("get: %d", r.status)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	m := metrics(rm)
	if got := m.histogramCount("http.server.request.duration", "http.route=/api/tasks", "http.response.status_code=201"); got != 2 {
		t.Errorf("requests POST /api/tasks 201: %d, want 2", got)
	}
	if got := m.histogramCount("http.server.request.duration", "http.route=/api/tasks/{id}", "http.response.status_code=404"); got != 1 {
		t.Errorf("requests GET /api/tasks/{id} 404: %d, want 1", got)
	}
	for _, c := range []struct {
		attrs []string
		want  int64
	}{
		{[]string{"handoff.downstream.service=notification", "handoff.downstream.outcome=ok"}, 2},
		{[]string{"handoff.downstream.service=audit", "handoff.downstream.outcome=unavailable"}, 1},
		{[]string{"handoff.downstream.service=audit", "handoff.downstream.outcome=rejected"}, 1},
	} {
		if got := m.sum("handoff.downstream.calls", c.attrs...); got != c.want {
			t.Errorf("handoff.downstream.calls %v = %d, want %d", c.attrs, got, c.want)
		}
	}
	if got := m.sum("handoff.outbox.dead_letters"); got != 1 {
		t.Errorf("dead letters: %d, want 1", got)
	}
	if p, d := m.gauge("handoff.outbox.events", "handoff.outbox.state=pending"), m.gauge("handoff.outbox.events", "handoff.outbox.state=dead"); p != 1 || d != 1 {
		t.Errorf("outbox gauge: %v pending, %v dead; want 1 and 1", p, d)
	}
	if age := m.gauge("handoff.outbox.oldest_pending.age"); age < 0 {
		t.Errorf("oldest pending age %v", age)
	}
}

// attrs flattens attributes to key → value text.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// collected is a collection's data points, by metric name.
type collected map[string]metricdata.Aggregation

func metrics(rm metricdata.ResourceMetrics) collected {
	c := collected{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			c[m.Name] = m.Data
		}
	}
	return c
}

// has reports whether set holds every "key=value" of want.
func has(set attribute.Set, want []string) bool {
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

func (c collected) sum(name string, want ...string) int64 {
	var n int64
	if s, ok := c[name].(metricdata.Sum[int64]); ok {
		for _, dp := range s.DataPoints {
			if has(dp.Attributes, want) {
				n += dp.Value
			}
		}
	}
	return n
}

func (c collected) histogramCount(name string, want ...string) uint64 {
	var n uint64
	if h, ok := c[name].(metricdata.Histogram[float64]); ok {
		for _, dp := range h.DataPoints {
			if has(dp.Attributes, want) {
				n += dp.Count
			}
		}
	}
	return n
}

// gauge is the value of the gauge's point with want (-1 if none).
func (c collected) gauge(name string, want ...string) float64 {
	switch g := c[name].(type) {
	case metricdata.Gauge[int64]:
		for _, dp := range g.DataPoints {
			if has(dp.Attributes, want) {
				return float64(dp.Value)
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range g.DataPoints {
			if has(dp.Attributes, want) {
				return dp.Value
			}
		}
	}
	return -1
}
