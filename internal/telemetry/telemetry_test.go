package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	collectormetric "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/handoff-dev/handoff/internal/telemetry"
)

// receiver is an OTLP/HTTP endpoint that keeps what it is sent.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	spans    map[string]string // span name → service.name
	metrics  map[string]bool
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{spans: map[string]string{}, metrics: map[string]bool{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		switch r.URL.Path {
		case "/v1/traces":
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				t.Errorf("traces: %v", err)
			}
			for _, rs := range req.ResourceSpans {
				service := ""
				for _, kv := range rs.Resource.Attributes {
					if kv.Key == "service.name" {
						service = kv.Value.GetStringValue()
					}
				}
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						rc.spans[s.Name] = service
					}
				}
			}
			b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(b)
		case "/v1/metrics":
			var req collectormetric.ExportMetricsServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				t.Errorf("metrics: %v", err)
			}
			for _, rm := range req.ResourceMetrics {
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						rc.metrics[m.Name] = true
					}
				}
			}
			b, _ := proto.Marshal(&collectormetric.ExportMetricsServiceResponse{})
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// clearEnv unsets the settings that turn export on (a developer's shell
// may have them).
func clearEnv(t *testing.T) {
	for _, k := range []string{telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint, telemetry.EnvMetricsEndpoint} {
		t.Setenv(k, "")
	}
}

// With no OTLP endpoint set, Setup installs nothing: the global providers
// stay the API's no-op ones (spans do not record, instruments are
// disabled), so nothing can be sent, even to a receiver the other OTEL_*
// settings name; and the propagator is W3C Trace Context all the same.
func TestSetupOffInstallsNothing(t *testing.T) {
	clearEnv(t)
	rc := newReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-probe=1")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "1")
	shutdown, err := telemetry.Setup(t.Context(), "task")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(t.Context(), "probe")
	span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("with export off a span records (%v) or has ids (%v)", span.IsRecording(), span.SpanContext())
	}
	counter, _ := otel.Meter("test").Int64Counter("probe")
	if counter.Enabled(t.Context()) {
		t.Error("with export off an instrument is enabled")
	}
	if err := shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if f := otel.GetTextMapPropagator().Fields(); len(f) != 2 || f[0] != "traceparent" || f[1] != "tracestate" {
		t.Errorf("propagator fields %v, want traceparent and tracestate", f)
	}
	if n := rc.count(); n != 0 {
		t.Errorf("the receiver got %d requests", n)
	}
	p, err := telemetry.New(t.Context(), "task", func(string) string { return "" })
	if p != nil || err != nil {
		t.Errorf("New without an endpoint = %v, %v; want nothing", p, err)
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics reach the
// receiver as the app's service, at the latest when shutdown flushes.
func TestExportOn(t *testing.T) {
	clearEnv(t)
	rc := newReceiver(t)
	t.Setenv(telemetry.EnvEndpoint, rc.URL)
	p, err := telemetry.New(t.Context(), "notification", func(k string) string {
		if k == telemetry.EnvEndpoint {
			return rc.URL
		}
		return ""
	})
	if err != nil || p == nil || p.Tracer == nil || p.Meter == nil {
		t.Fatalf("New = %+v, %v; want both providers", p, err)
	}
	_, span := p.Tracer.Tracer("test").Start(t.Context(), "probe", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	counter, _ := p.Meter.Meter("test").Int64Counter("probe.count")
	counter.Add(t.Context(), 1)
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.spans["probe"] != "notification" || !rc.metrics["probe.count"] {
		t.Errorf("received spans %v, metrics %v", rc.spans, rc.metrics)
	}
}

// One signal's endpoint exports that signal only.
func TestExportOneSignal(t *testing.T) {
	clearEnv(t)
	rc := newReceiver(t)
	t.Setenv(telemetry.EnvTracesEndpoint, rc.URL+"/v1/traces")
	p, err := telemetry.New(t.Context(), "audit", func(k string) string {
		if k == telemetry.EnvTracesEndpoint {
			return rc.URL + "/v1/traces"
		}
		return ""
	})
	if err != nil || p == nil || p.Tracer == nil || p.Meter != nil {
		t.Fatalf("New = %+v, %v; want traces only", p, err)
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A resource setting that does not parse stops the app with a clear error.
func TestBadResourceAttributes(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "no-equals-sign")
	_, err := telemetry.New(t.Context(), "task", func(k string) string {
		if k == telemetry.EnvEndpoint {
			return "http://127.0.0.1:1"
		}
		return ""
	})
	if err == nil {
		t.Fatal("a malformed OTEL_RESOURCE_ATTRIBUTES was accepted")
	}
	t.Log(err)
}
