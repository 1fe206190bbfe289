package otlpsink_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// provider is a tracer provider of app that exports each span at its end,
// with the OTLP/HTTP exporter, to the sink at srv.
func provider(t *testing.T, srv *httptest.Server, app string, opts ...otlptracehttp.Option) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(),
		append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", app))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func TestSDKSpansArriveWithParentsAndLinks(t *testing.T) {
	sink := otlpsink.New(otlpsink.Limits{})
	srv := httptest.NewServer(sink)
	defer srv.Close()
	ctx := context.Background()
	task := provider(t, srv, "task").Tracer("test")
	notification := provider(t, srv, "notification", otlptracehttp.WithCompression(otlptracehttp.GzipCompression)).Tracer("test")

	ctx, root := task.Start(ctx, "POST /api/tasks", trace.WithSpanKind(trace.SpanKindServer))
	_, call := task.Start(ctx, "POST notify", trace.WithSpanKind(trace.SpanKindClient))
	// The Notification Service continues the trace from the traceparent.
	remote := trace.ContextWithRemoteSpanContext(context.Background(), call.SpanContext())
	_, served := notification.Start(remote, "POST /api/notify", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("http.response.status_code", 200)))
	served.End()
	call.SetStatus(codes.Error, "the service answered 502")
	call.End()
	root.SetAttributes(attribute.String("outcome", "created"), attribute.StringSlice("tags", []string{"a", "b"}))
	root.End()
	// A redelivery: a new trace, linked to the create.
	_, redeliver := task.Start(context.Background(), "outbox.redeliver",
		trace.WithLinks(trace.Link{SpanContext: root.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("messaging.message.id", "e1")}}))
	redeliver.End()

	spans := sink.Trace(root.SpanContext().TraceID().String())
	if len(spans) != 3 {
		t.Fatalf("got %d spans of the create's trace, want 3: %+v", len(spans), spans)
	}
	byName := map[string]otlpsink.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	r, c, n := byName["POST /api/tasks"], byName["POST notify"], byName["POST /api/notify"]
	if r.ParentSpanID != "" || r.Service != "task" || r.Kind != "server" || r.Attributes["outcome"] != "created" || r.Attributes["tags"] != "[a, b]" {
		t.Errorf("root = %+v", r)
	}
	if c.ParentSpanID != r.SpanID || c.Status != "error" || c.StatusMessage != "the service answered 502" || c.Kind != "client" {
		t.Errorf("client span = %+v, want parent %s and an error status", c, r.SpanID)
	}
	if n.ParentSpanID != c.SpanID || n.Service != "notification" || n.Attributes["http.response.status_code"] != "200" {
		t.Errorf("notification span = %+v, want parent %s", n, c.SpanID)
	}
	if r.SpanID != root.SpanContext().SpanID().String() || r.Start.IsZero() || r.End.Before(r.Start) {
		t.Errorf("root span %s from %v to %v, want span id %s and times in order", r.SpanID, r.Start, r.End, root.SpanContext().SpanID())
	}

	re := sink.Trace(redeliver.SpanContext().TraceID().String())
	if len(re) != 1 || len(re[0].Links) != 1 {
		t.Fatalf("redelivery trace = %+v, want one span with one link", re)
	}
	if l := re[0].Links[0]; l.TraceID != r.TraceID || l.SpanID != r.SpanID || l.Attributes["messaging.message.id"] != "e1" {
		t.Errorf("link = %+v, want %s/%s", l, r.TraceID, r.SpanID)
	}
	if recent := sink.Recent(10); len(recent) != 2 || recent[0].Root != "outbox.redeliver" || recent[1].Root != "POST /api/tasks" || recent[1].Spans != 3 || recent[1].Service != "task" {
		t.Errorf("Recent = %+v", recent)
	}
}

// The apps' metric exporter posts to the same endpoint: it must succeed,
// so the apps log no export errors against devstack.
func TestSDKMetricsAreAccepted(t *testing.T) {
	sink := otlpsink.New(otlpsink.Limits{})
	srv := httptest.NewServer(sink)
	defer srv.Close()
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	counter, _ := mp.Meter("test").Int64Counter("requests")
	counter.Add(ctx, 1, metricAttrs("201"))
	counter.Add(ctx, 1, metricAttrs("400"))
	if err := exp.Export(ctx, collect(t, reader)); err != nil {
		t.Fatalf("export: %v", err)
	}
	if got := sink.Counts().MetricPoints; got != 2 {
		t.Errorf("MetricPoints = %d, want 2", got)
	}
}

// An OTLP/JSON exporter is told, non-retryably, what to set.
func TestJSONExporterIsRefused(t *testing.T) {
	sink := otlpsink.New(otlpsink.Limits{})
	srv := httptest.NewServer(sink)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, span := tp.Tracer("test").Start(ctx, "x")
	span.End()
	err = exp.ExportSpans(ctx, rec.Ended())
	if err == nil || !strings.Contains(err.Error(), "415") || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf") {
		t.Errorf("a JSON export = %v, want a 415 naming the protocol to set", err)
	}
	if n := sink.Counts().Spans; n != 0 {
		t.Errorf("a JSON export stored %d spans", n)
	}
}

func metricAttrs(status string) metric.AddOption {
	return metric.WithAttributes(attribute.String("http.response.status_code", status))
}

func collect(t *testing.T, r *sdkmetric.ManualReader) *metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return &rm
}
