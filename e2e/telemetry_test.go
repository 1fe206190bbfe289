package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// appLogs keeps the JSON lines each app wrote (stdout and stderr, as the
// host simulator prefixes them: "[task] ", "[task warning] " ...) and
// sends every line to the test log too.
type appLogs struct {
	t     *testing.T
	mu    sync.Mutex
	lines map[string][]map[string]any // app → its JSON records
}

func (l *appLogs) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	sc := bufio.NewScanner(bytes.NewReader(p))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "[") {
			continue
		}
		prefix, rest, ok := strings.Cut(line[1:], "] ")
		app, _, _ := strings.Cut(prefix, " ")
		if !ok || (prefix != app && !strings.HasSuffix(prefix, " error") && !strings.HasSuffix(prefix, " warning")) {
			continue // the simulator's own lines ("[task host] ...") and the emulators'
		}
		var rec map[string]any
		if json.Unmarshal([]byte(rest), &rec) != nil {
			continue
		}
		l.mu.Lock()
		l.lines[app] = append(l.lines[app], rec)
		l.mu.Unlock()
	}
	return len(p), nil
}

// find returns app's records with field = value and msg (any msg if "").
func (l *appLogs) find(app, msg, field, value string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, rec := range l.lines[app] {
		if rec[field] == value && (msg == "" || rec["msg"] == msg) {
			out = append(out, rec)
		}
	}
	return out
}

// waitFor polls until app has logged msg with field = value.
func (l *appLogs) waitFor(t *testing.T, app, msg, field, value string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if recs := l.find(app, msg, field, value); len(recs) > 0 {
			return recs[0]
		}
	}
	t.Fatalf("%s never logged %q with %s %s", app, msg, field, value)
	return nil
}

// otlpDefaultPort is where an OpenTelemetry SDK exports when no endpoint
// is set (localhost:4318, OTLP/HTTP).
const otlpDefaultPort = "127.0.0.1:4318"

// countConnections listens on addr and counts the connections it accepts,
// closing each; nil when the port is taken (another process uses it: the
// check is then skipped, and said so).
func countConnections(t *testing.T, addr string) *atomic.Int64 {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Logf("%s is in use (%v): not checking that nothing connects to it", addr, err)
		return nil
	}
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return &n
}

// traceparentFor is a client's traceparent in a fresh trace.
func traceparentFor(trace string) string { return "00-" + trace + "-00f067aa0ba902b7-01" }

// TestTraceparentInEveryAppsLogs is issue 17's first Done-when, with
// export off (no OTEL_EXPORTER_OTLP_ENDPOINT, as in Azure by default): a
// create sent with a traceparent logs that trace id in all three apps;
// a create whose audit event is queued (the Audit Service down) logs it
// again when a later sweep delivers the event, in the Task API and in the
// Audit Service. Nothing connects to OTLP's default port meanwhile.
func TestTraceparentInEveryAppsLogs(t *testing.T) {
	otlp := countConnections(t, otlpDefaultPort)
	logs := &appLogs{t: t, lines: map[string][]map[string]any{}}
	// Short batch and export intervals: were export on, it would send at once.
	quick := map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_METRIC_EXPORT_INTERVAL": "50"}
	env := map[string]map[string]string{
		"task": {"AUDIT_RETRY_DELAY": "1ms", "DOWNSTREAM_TIMEOUT": "2s", appmain.EnvWarmUp: "off"},
	}
	for _, app := range devstack.Apps() {
		if env[app] == nil {
			env[app] = map[string]string{}
		}
		for k, v := range quick {
			env[app][k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := devstack.Start(ctx, devstack.Options{Root: repoRoot(), StateDir: t.TempDir(), BinDir: binDir, Output: logs,
		AppEnv: env, TimersManual: true, Telemetry: devstack.Telemetry{Off: true}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, app := range devstack.Apps() {
		logs.waitFor(t, app, "telemetry: export off (no OTEL_EXPORTER_OTLP_ENDPOINT); trace context is still propagated", "level", "INFO")
	}
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")

	const first = "0af7651916cd43dd8448eb211c80319c"
	r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "traced"}, "traceparent", traceparentFor(first))
	if r.status != http.StatusCreated || r.body["audit_status"] != "logged" || r.body["notification_status"] != "sent" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	logs.waitFor(t, "task", "task: created", "trace_id", first)
	logs.waitFor(t, "notification", "Notification sent", "trace_id", first)
	logs.waitFor(t, "audit", "Audit entry recorded", "trace_id", first)

	// The Audit Service is down: the event is queued, and delivered by a
	// later sweep, whose lines carry the create's trace id.
	if err := s.StopApp("audit"); err != nil {
		t.Fatal(err)
	}
	const queued = "5c2f2b6e0f6a4e3e9d7c1b0a99887766"
	r = call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "queued"}, "traceparent", traceparentFor(queued))
	if r.status != http.StatusCreated || r.body["audit_status"] != "queued" {
		t.Fatalf("create with the Audit Service down: %d %s", r.status, r.raw)
	}
	if recs := logs.find("audit", "", "trace_id", queued); len(recs) != 0 {
		t.Fatalf("the Audit Service logged the queued create while down: %v", recs)
	}
	if err := s.StartApp(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	drain(t, s, 2)
	delivery := logs.waitFor(t, "task", "audit: event redelivered", "trace_id", queued)
	if delivery["result"] != "delivered" {
		t.Errorf("the redelivery's line: %v", delivery)
	}
	logs.waitFor(t, "audit", "Audit entry recorded", "trace_id", queued)
	if otlp != nil && otlp.Load() != 0 {
		t.Errorf("with export off, %d connections reached OTLP's default port", otlp.Load())
	}
}

// spansByName indexes a trace's spans by service and name.
func spansByName(spans []otlpsink.Span) map[string]otlpsink.Span {
	m := map[string]otlpsink.Span{}
	for _, sp := range spans {
		m[sp.Service+" "+sp.Name] = sp
	}
	return m
}

// waitForSpans polls the receiver until trace holds every one of want
// ("service span-name").
func waitForSpans(t *testing.T, sink *otlpsink.Sink, trace string, want ...string) map[string]otlpsink.Span {
	t.Helper()
	var got map[string]otlpsink.Span
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = spansByName(sink.Trace(trace))
		missing := false
		for _, w := range want {
			if _, ok := got[w]; !ok {
				missing = true
			}
		}
		if !missing {
			return got
		}
	}
	var names []string
	for k := range got {
		names = append(names, k)
	}
	t.Fatalf("trace %s: want %v, have %v", trace, want, names)
	return nil
}

// TestOTLPExportOneTrace is issue 17's second Done-when: with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a receiver (devstack's), one
// create yields spans from the three apps in one trace, each service's
// server span a child of its caller's client span; a queued event's
// redelivery joins that trace, linked to the create.
func TestOTLPExportOneTrace(t *testing.T) {
	env := map[string]map[string]string{"task": {"AUDIT_RETRY_DELAY": "1ms", "DOWNSTREAM_TIMEOUT": "2s", appmain.EnvWarmUp: "off"}}
	s := start(t, devstack.Options{AppEnv: env, TimersManual: true})
	sink := s.Traces()
	if sink == nil || s.OTLPEndpoint() == "" {
		t.Fatal("devstack runs no receiver")
	}
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	const trace = "1bf92f3577b34da6a3ce929d0e0e4736"
	r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "exported"}, "traceparent", traceparentFor(trace))
	if r.status != http.StatusCreated || r.body["audit_status"] != "logged" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	got := waitForSpans(t, sink, trace,
		"task POST /api/tasks", "task entraauth.validate", "task store.CreateTask", "task notification.send", "task audit.deliver",
		"task downstream.token", "task store.MarkDelivered",
		"notification POST /api/notify", "notification entraauth.validate", "notification store.AddNotification",
		"audit POST /api/audit", "audit entraauth.validate", "audit store.AppendAudit")
	create := got["task POST /api/tasks"]
	if create.ParentSpanID != "00f067aa0ba902b7" || create.Kind != "server" || create.Attributes["http.route"] != "/api/tasks" ||
		create.Attributes["http.response.status_code"] != "201" || create.Attributes["faas.invocation_id"] == "" {
		t.Errorf("the create's server span: %+v", create)
	}
	for callee, caller := range map[string]string{"notification POST /api/notify": "task notification.send", "audit POST /api/audit": "task audit.deliver"} {
		if got[callee].ParentSpanID != got[caller].SpanID || got[caller].ParentSpanID != create.SpanID {
			t.Errorf("%s's parent is %s, want %s (%s), a child of the create", callee, got[callee].ParentSpanID, caller, got[caller].SpanID)
		}
	}

	// A queued event's delivery by a later sweep is in the create's trace.
	if err := s.StopApp("audit"); err != nil {
		t.Fatal(err)
	}
	const queued = "2bf92f3577b34da6a3ce929d0e0e4736"
	r = call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "queued"}, "traceparent", traceparentFor(queued))
	if r.status != http.StatusCreated || r.body["audit_status"] != "queued" {
		t.Fatalf("create with the Audit Service down: %d %s", r.status, r.raw)
	}
	if err := s.StartApp(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	drain(t, s, 2)
	got = waitForSpans(t, sink, queued, "task POST /api/tasks", "task outbox.redeliver", "audit POST /api/audit")
	rd, create := got["task outbox.redeliver"], got["task POST /api/tasks"]
	if rd.ParentSpanID != create.SpanID || len(rd.Links) == 0 || rd.Links[0].SpanID != create.SpanID || rd.Attributes["handoff.outbox.result"] != "delivered" {
		t.Errorf("the redelivery span %+v; want a child of the create %s, linked to it", rd, create.SpanID)
	}
	if n := sink.Counts().DroppedSpans; n != 0 {
		t.Errorf("%d spans dropped", n)
	}
}
