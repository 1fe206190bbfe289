package funcapp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

const (
	testTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParent      = "00f067aa0ba902b7"
	testTraceparent = "00-" + testTrace + "-" + testParent + "-01"
)

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// With an SDK, a routed request is a server span named after its route,
// a child of the caller's traceparent, with the route, the host's
// invocation id and the status; and one measurement of
// http.server.request.duration by method, route and status.
func TestRouterSpansAndMetrics(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rt := funcapp.NewRouter(funcapp.WithTracerProvider(tp), funcapp.WithMeterProvider(mp))
	var inHandler trace.SpanContext
	rt.Handle("GET", "/api/tasks/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler = trace.SpanContextFromContext(r.Context())
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	req := httptest.NewRequest("GET", "/API/Tasks/42/", nil)
	req.Header.Set("traceparent", testTraceparent)
	req.Header.Set(funcapp.InvocationIDHeader, "6f1c1a59-0ad5-4b5f-9a8f-5a3f0e0b1c2d")
	rt.ServeHTTP(httptest.NewRecorder(), req)

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	a := attrMap(s.Attributes)
	if s.Name != "GET /api/tasks/{id}" || s.SpanKind != trace.SpanKindServer || s.Parent.SpanID().String() != testParent ||
		s.SpanContext.TraceID().String() != testTrace || inHandler.SpanID() != s.SpanContext.SpanID() {
		t.Errorf("span %s kind %v parent %s trace %s; handler saw %s", s.Name, s.SpanKind, s.Parent.SpanID(), s.SpanContext.TraceID(), inHandler.SpanID())
	}
	if a["http.route"] != "/api/tasks/{id}" || a["http.request.method"] != "GET" || a["http.response.status_code"] != "503" ||
		a["faas.invocation_id"] != "6f1c1a59-0ad5-4b5f-9a8f-5a3f0e0b1c2d" || a["faas.trigger"] != "http" || s.Status.Code.String() != "Error" {
		t.Errorf("span attributes %v, status %v", a, s.Status)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var points []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "http.server.request.duration" && m.Unit == "s" {
				for _, dp := range h.DataPoints {
					a := attrMap(dp.Attributes.ToSlice())
					points = append(points, a["http.request.method"]+" "+a["http.route"]+" "+a["http.response.status_code"])
				}
			}
		}
	}
	if strings.Join(points, ";") != "GET /api/tasks/{id} 503" {
		t.Errorf("http.server.request.duration points %v", points)
	}
}

// A timer invocation is a server span named after the function.
func TestTimerSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var inRun trace.SpanContext
	h := funcapp.Timer("timer", func(ctx context.Context, _ funcapp.TimerInfo) ([]string, error) {
		inRun = trace.SpanContextFromContext(ctx)
		return nil, nil
	}, funcapp.WithTracerProvider(tp))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/sweep", strings.NewReader(`{"Data":{"timer":{"Schedule":{}}}}`)))
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "sweep" || attrMap(spans[0].Attributes)["faas.trigger"] != "timer" ||
		spans[0].Parent.IsValid() || inRun.SpanID() != spans[0].SpanContext.SpanID() {
		t.Errorf("timer spans %+v", spans)
	}
}

// BenchmarkMiddleware measures what tracing a route costs when no SDK is
// installed (the global no-op providers: export off), in one run: no
// middleware, funcapp's (Instrument), and otelhttp's handler. The request
// carries a traceparent, as every request from the host does. Compare the
// three lines' ns/op and allocs/op (docs/telemetry.md quotes a run).
func BenchmarkMiddleware(b *testing.B) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"none", ok},
		{"funcapp", funcapp.Instrument("POST", "/api/tasks", ok)},
		{"otelhttp", otelhttp.NewHandler(ok, "POST /api/tasks")},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/api/tasks", nil)
			req.Header.Set("traceparent", testTraceparent)
			w := discard{}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing (httptest's recorder
// would dominate the measurement).
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
