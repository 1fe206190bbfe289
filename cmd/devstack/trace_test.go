package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// sinkWithRunInfo is a trace receiver on a free port and a state directory
// whose devstack.json names it, as a running devstack's does.
func sinkWithRunInfo(t *testing.T, info runInfo) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(otlpsink.New(otlpsink.Limits{MaxTraces: 50}))
	t.Cleanup(srv.Close)
	state := t.TempDir()
	info.Entra, info.CAFile = "https://127.0.0.1:1", filepath.Join(state, "ca.pem")
	if info.Traces == "sink" {
		info.Traces = srv.URL
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(state, runInfoFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, state
}

// tracer is an SDK tracer of app exporting each span at its end to srv.
func tracer(t *testing.T, srv *httptest.Server, app string) trace.Tracer {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", app))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp.Tracer("test")
}

// sendCreate sends the spans of a create through the three apps, as the
// SDK in each would, and a redelivery linked to it; it returns the
// create's trace id and the redelivery's.
func sendCreate(t *testing.T, srv *httptest.Server) (string, string) {
	task, notification, audit := tracer(t, srv, "task"), tracer(t, srv, "notification"), tracer(t, srv, "audit")
	ctx, root := task.Start(context.Background(), "POST /api/tasks", trace.WithSpanKind(trace.SpanKindServer))
	nctx, ncall := task.Start(ctx, "POST notification", trace.WithSpanKind(trace.SpanKindClient))
	_, nserved := notification.Start(trace.ContextWithRemoteSpanContext(context.Background(), trace.SpanContextFromContext(nctx)),
		"POST /api/notify", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.Int("http.response.status_code", 200)))
	nserved.End()
	ncall.End()
	actx, acall := task.Start(ctx, "POST audit", trace.WithSpanKind(trace.SpanKindClient))
	_, aserved := audit.Start(trace.ContextWithRemoteSpanContext(context.Background(), trace.SpanContextFromContext(actx)),
		"POST /api/audit", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.Int("http.response.status_code", 503)))
	aserved.SetStatus(codes.Error, "store unavailable")
	aserved.End()
	acall.SetAttributes(attribute.String("outcome", "queued"))
	acall.End()
	root.SetAttributes(attribute.Int("http.response.status_code", 201))
	root.End()
	_, re := task.Start(context.Background(), "outbox.redeliver", trace.WithLinks(trace.Link{SpanContext: root.SpanContext()}))
	re.End()
	return root.SpanContext().TraceID().String(), re.SpanContext().TraceID().String()
}

func TestTraceCommandPrintsTheTree(t *testing.T) {
	srv, state := sinkWithRunInfo(t, runInfo{Traces: "sink"})
	id, redelivery := sendCreate(t, srv)
	var out strings.Builder
	if err := traceCommand(t.Context(), []string{"-state", state, strings.ToUpper(id)}, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("devstack trace %s:\n%s", id, out.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if want := "trace " + id + ": 5 spans from task, notification, audit"; lines[0] != want {
		t.Errorf("header = %q, want %q", lines[0], want)
	}
	// Name and depth of each span line, in order.
	var got []string
	for _, l := range lines[3:] {
		trimmed := strings.TrimLeft(l, " ")
		f := strings.Fields(trimmed)
		got = append(got, strings.Repeat(">", (len(l)-len(trimmed))/2)+f[0]+" "+f[1]+" "+f[2])
	}
	want := []string{"task POST /api/tasks", ">task POST notification", ">>notification POST /api/notify", ">task POST audit", ">>audit POST /api/audit"}
	if !slices.Equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`(?m)^    audit +POST /api/audit +\S+ +HTTP 503, error: store unavailable$`).MatchString(out.String()) ||
		!regexp.MustCompile(`(?m)^  task +POST audit +\S+ +queued$`).MatchString(out.String()) {
		t.Errorf("outcomes missing:\n%s", out.String())
	}

	out.Reset()
	if err := traceCommand(t.Context(), []string{"-state", state, redelivery}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n  ↪ linked from "+id+"/") {
		t.Errorf("the redelivery's link is not shown:\n%s", out.String())
	}
}

func TestTraceCommandListsRecentTraces(t *testing.T) {
	srv, state := sinkWithRunInfo(t, runInfo{Traces: "sink"})
	var out strings.Builder
	if err := traceCommand(t.Context(), []string{"-state", state}, &out); err != nil || !strings.HasPrefix(out.String(), "no traces yet") {
		t.Errorf("an empty receiver: %v, %q", err, out.String())
	}
	id, redelivery := sendCreate(t, srv)
	out.Reset()
	if err := traceCommand(t.Context(), []string{"-state", state}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TRACE ID") ||
		!regexp.MustCompile(`^`+redelivery+` +outbox\.redeliver +task +\d\d:\d\d:\d\d\.\d{3} +1$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^`+id+` +POST /api/tasks +task +\d\d:\d\d:\d\d\.\d{3} +5$`).MatchString(lines[2]) {
		t.Errorf("list:\n%s", out.String())
	}
	out.Reset()
	if err := traceCommand(t.Context(), []string{"-state", state, "-n", "1"}, &out); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("-n 1: %v\n%s", err, out.String())
	}
}

func TestTraceCommandErrors(t *testing.T) {
	_, state := sinkWithRunInfo(t, runInfo{Traces: "sink"})
	unknown := "0af7651916cd43dd8448eb211c80319c"
	err := traceCommand(t.Context(), []string{"-state", state, unknown}, &strings.Builder{})
	if want := "no spans for trace " + unknown + " (devstack keeps the last 50 traces)"; err == nil || err.Error() != want {
		t.Errorf("an unknown trace: %v, want %q", err, want)
	}
	for _, args := range [][]string{
		{"-state", state, "not-a-trace-id"},
		{"-state", state, strings.Repeat("0", 32)},
		{"-state", state, unknown[:31]},
		{"-state", state, unknown, unknown},
		{"-state", state, "-n", "0"},
		{"-nope"},
	} {
		if err := traceCommand(t.Context(), args, &strings.Builder{}); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}

	_, external := sinkWithRunInfo(t, runInfo{OTLPEndpoint: "https://otlp.example:4318"})
	_, off := sinkWithRunInfo(t, runInfo{})
	for state, want := range map[string]string{
		t.TempDir(): "no devstack is running with state in ",
		external:    "this devstack sends the apps' spans to https://otlp.example:4318 (OTEL_EXPORTER_OTLP_ENDPOINT), not to itself",
		off:         "this devstack runs without its trace receiver (-no-traces)",
	} {
		if err := traceCommand(t.Context(), []string{"-state", state}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", state, err, want)
		}
	}
}

// The demo's wait ends, with what arrived and what did not.
func TestWaitForTraceNamesMissingApps(t *testing.T) {
	srv, _ := sinkWithRunInfo(t, runInfo{})
	_, root := tracer(t, srv, "task").Start(context.Background(), "POST /api/tasks")
	root.End()
	id := root.SpanContext().TraceID().String()
	got, missing, err := waitForTrace(t.Context(), srv.Client(), srv.URL, id, demoApps, 300*time.Millisecond)
	if err != nil || len(got.Spans) != 1 || !slices.Equal(missing, []string{"notification", "audit"}) {
		t.Errorf("waitForTrace = %d spans, missing %v, %v; want the task's span and notification, audit missing", len(got.Spans), missing, err)
	}
	// Nothing at all: an empty trace, every app missing, no error.
	got, missing, err = waitForTrace(t.Context(), srv.Client(), srv.URL, "0af7651916cd43dd8448eb211c80319c", demoApps, 300*time.Millisecond)
	if err != nil || len(got.Spans) != 0 || !slices.Equal(missing, demoApps) {
		t.Errorf("an unknown trace: %v, %v, %v", got, missing, err)
	}
	full, _ := sendCreate(t, srv)
	got, missing, err = waitForTrace(t.Context(), srv.Client(), srv.URL, full, demoApps, time.Hour)
	if err != nil || missing != nil || len(got.Spans) != 5 {
		t.Errorf("a complete trace: %d spans, missing %v, %v", len(got.Spans), missing, err)
	}
}

// A child can arrive before its parent (each app exports in batches): the
// wait goes on until the parent is there too.
func TestWaitForTraceWaitsForParents(t *testing.T) {
	srv, _ := sinkWithRunInfo(t, runInfo{})
	task, notification, audit := tracer(t, srv, "task"), tracer(t, srv, "notification"), tracer(t, srv, "audit")
	ctx, root := task.Start(context.Background(), "POST /api/tasks") // ended (sent) last
	for _, tr := range []trace.Tracer{task, notification, audit} {
		_, s := tr.Start(ctx, "child")
		s.End()
	}
	id := root.SpanContext().TraceID().String()
	type result struct {
		spans   int
		missing []string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		got, missing, err := waitForTrace(context.Background(), srv.Client(), srv.URL, id, demoApps, 30*time.Second)
		done <- result{len(got.Spans), missing, err}
	}()
	// The three children are there (each End sent its span): the wait
	// goes on until their parent is.
	time.Sleep(3 * tracePoll)
	root.End()
	if r := <-done; r.err != nil || r.missing != nil || r.spans != 4 {
		t.Errorf("waitForTrace = %d spans, missing %v, %v; want the 3 children and their parent", r.spans, r.missing, r.err)
	}
}

func TestTracesLine(t *testing.T) {
	for _, c := range []struct{ traces, otlp, want string }{
		{"http://127.0.0.1:7075", "http://127.0.0.1:7075", "  Traces\thttp://127.0.0.1:7075\t(the apps' OTLP; bin/devstack trace lists them"},
		{"", "https://otlp.example:4318", "  Traces\tsent to https://otlp.example:4318\t(OTEL_EXPORTER_OTLP_ENDPOINT from your environment; devstack keeps none)"},
		{"", "", "  Traces\toff\t(-no-traces: the apps export nothing)"},
	} {
		if got := tracesLine(c.traces, c.otlp); !strings.HasPrefix(got, c.want) {
			t.Errorf("tracesLine(%q, %q) = %q, want %q…", c.traces, c.otlp, got, c.want)
		}
	}
}
