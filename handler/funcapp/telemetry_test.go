package funcapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + traceID + "-" + parentSpan + "-01"
)

func TestMain(m *testing.M) {
	// What an app's main does (internal/telemetry): the global propagator
	// is a no-op until set.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	m.Run()
}

func spanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(parentSpan)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}

func decodeLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// Every line logged with a span's context carries its ids; a line without
// one carries none (no empty or zero ids).
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	log := slog.New(funcapp.NewLogHandler(&stdout, &stderr, nil)).With("app", "task")
	ctx := trace.ContextWithSpanContext(context.Background(), spanContext(t))
	log.InfoContext(ctx, "in a span")
	log.WarnContext(ctx, "warned in a span")
	log.Info("no context")
	log.InfoContext(context.Background(), "a context without a span")
	out, errs := decodeLines(t, &stdout), decodeLines(t, &stderr)
	if len(out) != 3 || len(errs) != 1 {
		t.Fatalf("stdout %d lines, stderr %d", len(out), len(errs))
	}
	for _, rec := range []map[string]any{out[0], errs[0]} {
		if rec["trace_id"] != traceID || rec["span_id"] != parentSpan || rec["app"] != "task" {
			t.Errorf("a line in a span: %v", rec)
		}
	}
	for _, rec := range out[1:] {
		if _, ok := rec["trace_id"]; ok {
			t.Errorf("a line outside any span has a trace id: %v", rec)
		}
		if _, ok := rec["span_id"]; ok {
			t.Errorf("a line outside any span has a span id: %v", rec)
		}
	}
}

// With no SDK installed (the global no-op providers), a routed request
// continues the caller's traceparent: its handler, its log lines and any
// call it makes downstream see the caller's trace.
func TestRouterContinuesTraceparent(t *testing.T) {
	var stdout bytes.Buffer
	log := slog.New(funcapp.NewLogHandler(&stdout, &stdout, nil))
	var seen trace.SpanContext
	var injected string
	rt := funcapp.NewRouter()
	rt.Handle("POST", "/api/tasks", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = trace.SpanContextFromContext(r.Context())
		log.InfoContext(r.Context(), "handled")
		h := http.Header{}
		otel.GetTextMapPropagator().Inject(r.Context(), propagation.HeaderCarrier(h))
		injected = h.Get("traceparent")
		w.WriteHeader(http.StatusCreated)
	}))
	req := httptest.NewRequest("POST", "/api/tasks", nil)
	req.Header.Set("traceparent", traceparent)
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d", rec.Code)
	}
	if seen.TraceID().String() != traceID {
		t.Errorf("the handler's trace is %s, want the caller's %s", seen.TraceID(), traceID)
	}
	if injected != traceparent {
		t.Errorf("a downstream call would send traceparent %q, want %q", injected, traceparent)
	}
	if lines := decodeLines(t, &stdout); lines[0]["trace_id"] != traceID {
		t.Errorf("log line: %v", lines[0])
	}

	// Without a traceparent, and without an SDK, there is no trace.
	seen = trace.SpanContext{}
	rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/tasks", nil))
	if seen.IsValid() {
		t.Errorf("a request without traceparent got trace %s with no SDK installed", seen.TraceID())
	}

	// A malformed traceparent is ignored, never an error.
	req = httptest.NewRequest("POST", "/api/tasks", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-zz-01")
	rec = httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated || seen.IsValid() {
		t.Errorf("a malformed traceparent: status %d, trace %v", rec.Code, seen)
	}
}

// The timer's run continues the host's traceparent when one is sent.
func TestTimerContinuesTraceparent(t *testing.T) {
	var seen trace.SpanContext
	h := funcapp.Timer("timer", func(ctx context.Context, _ funcapp.TimerInfo) ([]string, error) {
		seen = trace.SpanContextFromContext(ctx)
		return nil, nil
	})
	req := httptest.NewRequest("POST", "/sweep", strings.NewReader(`{"Data":{"timer":{"Schedule":{}}}}`))
	req.Header.Set("traceparent", traceparent)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || seen.TraceID().String() != traceID {
		t.Errorf("status %d, trace %s", rec.Code, seen.TraceID())
	}
}
