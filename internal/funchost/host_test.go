//go:build unix

package funchost_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/funchost"
)

// fakeApp writes an app folder whose function.json files exercise the
// router, and a host.json with the given route prefix.
func fakeApp(t *testing.T, prefix string) (appDir, hostJSON string) {
	t.Helper()
	dir := t.TempDir()
	functions := map[string]string{
		"things": `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"things/{id}","methods":["get","post"]},{"type":"http","direction":"out","name":"res"}]}`,
		"thing":  `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"things/{id:int}","methods":["delete"]}]}`,
		"any":    `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"any"}]}`,
		"files":  `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"files/{*rest}","methods":["get"]}]}`,
		"opt":    `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"opt/{name?}","methods":["get"]}]}`,
		"named":  `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","methods":["get"]}]}`,
		"timer":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 */5 * * * *"}]}`,
		"off":    `{"disabled":true,"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"off"}]}`,
	}
	for name, doc := range functions {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostJSON = filepath.Join(t.TempDir(), "host.json")
	doc := `{"version":"2.0","customHandler":{"enableForwardingHttpRequest":true},"extensions":{"http":{"routePrefix":"` + prefix + `"}}}`
	if err := os.WriteFile(hostJSON, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, hostJSON
}

type fakeOpts struct {
	prefix       string
	startTimeout time.Duration
	stopTimeout  time.Duration
	holdTimeout  time.Duration
	env          map[string]string // more settings
	now          func() time.Time
}

// fakeHost serves a fake app behind a Host that runs this test binary as
// its handler in the given mode. It is closed when the test ends.
func fakeHost(t *testing.T, mode string, o fakeOpts) (*funchost.Host, *syncBuffer) {
	t.Helper()
	if o.prefix == "" {
		o.prefix = "api"
	}
	appDir, hostJSON := fakeApp(t, o.prefix)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	// GOCOVERDIR: under go test -cover the handler (this binary) would
	// otherwise warn on its output that it has nowhere to write coverage.
	env := map[string]string{envFakeHandler: mode, "SETTING": "value", "GOCOVERDIR": t.TempDir()}
	maps.Copy(env, o.env)
	h, err := funchost.NewHost(funchost.HostConfig{
		Name: "fake", Command: exe, AppDir: appDir, HostJSON: hostJSON, Listener: l,
		Env:          env,
		Now:          o.now,
		HoldTimeout:  o.holdTimeout,
		Output:       out,
		StartTimeout: o.startTimeout, StopTimeout: o.stopTimeout,
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := h.PID()
		_ = h.Kill()
		_ = h.Close()
		if pid != 0 && !processGone(pid) {
			t.Errorf("the fake handler (pid %d) outlived its host", pid)
		}
		if t.Failed() {
			t.Logf("host output:\n%s", out)
		}
	})
	return h, out
}

func TestLoadRoutesRefusesWhatItCannotMatch(t *testing.T) {
	for _, route := range []string{"files/{name}.txt", "a/{*rest}/b", "a/{opt?}/b", "a//b", "a/{}"} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "f"), 0o755)
		doc := `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"` + route + `"}]}`
		os.WriteFile(filepath.Join(dir, "f", "function.json"), []byte(doc), 0o644)
		if _, err := funchost.LoadRoutes(dir, "api"); err == nil {
			t.Errorf("route %q was accepted", route)
		}
	}
}

func TestHostForwardsDeclaredRoutes(t *testing.T) {
	h, out := fakeHost(t, "echo", fakeOpts{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := h.URL()

	t.Run("request as sent", func(t *testing.T) {
		r := do(t, "POST", base+"/api/things/42?b=2&a=%2F&a=1", strings.NewReader(`{"x":1}`),
			"X-Test", "kept", "Authorization", "Bearer abc", "Content-Type", "application/json", "X-Forwarded-For", "10.0.0.1")
		if r.status != http.StatusTeapot || r.header.Get("X-Echo") != "yes" {
			t.Fatalf("status %d, headers %v: the handler's answer was not copied back", r.status, r.header)
		}
		var e echo
		if err := json.Unmarshal(r.raw, &e); err != nil {
			t.Fatal(err)
		}
		// The query is rebuilt: repeated keys joined with commas, re-encoded.
		if e.Method != "POST" || e.Path != "/api/things/42" || e.RawQuery != "b=2&a=%2F%2C1" || e.Body != `{"x":1}` {
			t.Errorf("forwarded %s %s ? %s body %q", e.Method, e.Path, e.RawQuery, e.Body)
		}
		if e.Header.Get("X-Test") != "kept" || e.Header.Get("Authorization") != "Bearer abc" ||
			e.Header.Get("Content-Type") != "application/json" || e.Header.Get("X-Forwarded-For") != "10.0.0.1" {
			t.Errorf("headers forwarded: %v", e.Header)
		}
		if e.Header.Get("X-Azure-Functions-HostVersion") != funchost.HostVersion || len(e.Header.Get("X-Azure-Functions-InvocationId")) != 36 ||
			e.Header.Get("User-Agent") != "Go-http-client/1.1 Azure-Functions-Host/"+funchost.HostVersion {
			t.Errorf("the host's headers: %v", e.Header)
		}
		if e.Host != strings.TrimPrefix(base, "http://") {
			t.Errorf("Host %q, want the public address", e.Host)
		}
	})

	t.Run("a client's traceparent is forwarded unchanged", func(t *testing.T) {
		const tp, ts = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=00f067aa0ba902b7"
		var e echo
		json.Unmarshal(do(t, "GET", base+"/api/any", nil, "traceparent", tp, "tracestate", ts).raw, &e)
		if e.Header.Get("traceparent") != tp || e.Header.Get("tracestate") != ts {
			t.Errorf("forwarded traceparent %q tracestate %q", e.Header.Get("traceparent"), e.Header.Get("tracestate"))
		}
	})

	t.Run("without one, the host's own is sent", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			var e echo
			json.Unmarshal(do(t, "GET", base+"/api/any", nil).raw, &e)
			tp := e.Header.Get("traceparent")
			parts := strings.Split(tp, "-")
			if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || parts[3] != "01" ||
				strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" || strings.ToLower(tp) != tp {
				t.Errorf("minted traceparent %q is not a valid W3C one", tp)
			}
			if seen[parts[1]] {
				t.Errorf("trace id %s minted twice", parts[1])
			}
			seen[parts[1]] = true
		}
	})

	t.Run("a chunked body arrives empty, without Content-Type", func(t *testing.T) {
		// An io.Reader of unknown length is sent chunked.
		r := do(t, "POST", base+"/api/any", io.MultiReader(strings.NewReader(`{"x":1}`)), "Content-Type", "application/json")
		var e echo
		json.Unmarshal(r.raw, &e)
		if e.Body != "" || e.Header.Get("Content-Type") != "" {
			t.Errorf("a chunked body forwarded: %q, Content-Type %q", e.Body, e.Header.Get("Content-Type"))
		}
	})

	t.Run("environment is the host's and its own variables", func(t *testing.T) {
		var e echo
		json.Unmarshal(do(t, "GET", base+"/api/any", nil).raw, &e)
		slices.Sort(e.Env)
		var keys []string
		for _, kv := range e.Env {
			keys = append(keys, kv[:strings.IndexByte(kv, '=')])
		}
		want := []string{envFakeHandler, funchost.EnvCustomHandlerPort, funchost.EnvCustomHandlerWorkerID,
			funchost.EnvHTTPWorkerPort, funchost.EnvHTTPWorkerID, funchost.EnvAppRootPath, "GOCOVERDIR", "SETTING"}
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("the handler's environment has %v, want %v", keys, want)
		}
		if !slices.Contains(e.Env, funchost.EnvAppRootPath+"="+h.AppDir()) {
			t.Errorf("FUNCTIONS_APP_ROOT_PATH is not the app's folder: %v", e.Env)
		}
	})

	routes := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/things/1", http.StatusTeapot, ""},
		{"GET", "/API/Things/1", http.StatusTeapot, ""}, // literals are case-insensitive
		{"GET", "/api/things/1/", http.StatusTeapot, ""},
		{"DELETE", "/api/things/x", http.StatusTeapot, ""}, // constraints are not checked
		{"PUT", "/api/things/1", http.StatusNotFound, ""},  // the route's method constraint fails: no route
		{"GET", "/api/things/x/", http.StatusTeapot, ""},
		{"GET", "/api/things", http.StatusNotFound, ""},
		{"GET", "/api/things/1/2", http.StatusNotFound, ""},
		{"PATCH", "/api/any", http.StatusTeapot, ""}, // no methods: every method
		{"GET", "/api/files", http.StatusTeapot, ""},
		{"GET", "/api/files/a/b/c", http.StatusTeapot, ""},
		{"POST", "/api/files/a", http.StatusNotFound, ""},
		{"GET", "/api/opt", http.StatusTeapot, ""},
		{"GET", "/api/opt/x", http.StatusTeapot, ""},
		{"GET", "/api/opt/x/y", http.StatusNotFound, ""},
		{"GET", "/api/named", http.StatusTeapot, ""}, // the route defaults to the function's name
		{"GET", "/api/timer", http.StatusNotFound, ""},
		{"GET", "/api/off", http.StatusNotFound, ""},
		{"GET", "/things/1", http.StatusNotFound, ""}, // the prefix is required
		{"GET", "/", http.StatusNotFound, ""},
	}
	for _, c := range routes {
		r := do(t, c.method, base+c.path, nil)
		if c.status == http.StatusTeapot {
			if r.status != c.status {
				t.Errorf("%s %s: %d %s, want it forwarded", c.method, c.path, r.status, r.raw)
			}
			continue
		}
		// ASP.NET's empty 404: no body of ours, no Allow.
		if r.status != c.status || len(r.raw) != 0 || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q Allow %q, want an empty %d", c.method, c.path, r.status, r.raw, r.header.Get("Allow"), c.status)
		}
	}

	t.Run("preflight forwarded", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/api/files/x", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "GET")
		var e echo
		json.Unmarshal(r.raw, &e)
		if r.status != http.StatusTeapot || e.Method != "OPTIONS" {
			t.Errorf("preflight: %d %s", r.status, r.raw)
		}
		if r := do(t, "OPTIONS", base+"/api/files/x", nil); r.status != http.StatusNotFound {
			t.Errorf("a plain OPTIONS on a GET route: %d, want 404", r.status)
		}
		if r := do(t, "OPTIONS", base+"/api/nope", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "GET"); r.status != http.StatusNotFound {
			t.Errorf("preflight on an undeclared path: %d, want 404", r.status)
		}
	})

	if err := h.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// stdout at Information, stderr at Error (Warning with "warn"); Stop is
	// SIGKILL, so the handler never prints that it stopped.
	for _, want := range []string{"[fake] fake handler starting\n", "[fake error] to stderr\n", "[fake warning] a WARNING line\n", "[fake error] without a newline\n", "[fake host] handler exited (signal: killed)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "fake handler stopped") {
		t.Error("Stop let the handler shut down gracefully; the host kills it")
	}
}

// TestFirstRequestReusesTheProbesConnection: the readiness probe goes
// through the client that forwards requests, as in the Functions host
// (DefaultHttpWorkerService.SendPingRequestAsync uses the same _httpClient
// as SendInvocationRequestAsync), so the first request after a start comes
// on the probe's connection rather than a new one; so does the first after
// a restart, on the new handler's.
func TestFirstRequestReusesTheProbesConnection(t *testing.T) {
	h, _ := fakeHost(t, "echo", fakeOpts{})
	for run := range 2 {
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var e echo
		if err := json.Unmarshal(do(t, "GET", h.URL()+"/api/any", nil).raw, &e); err != nil {
			t.Fatal(err)
		}
		if e.ProbeAddr == "" || e.RemoteAddr != e.ProbeAddr {
			t.Errorf("start %d: the first request came from %q, the probe from %q: want the probe's connection", run+1, e.RemoteAddr, e.ProbeAddr)
		}
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostRoutePrefix(t *testing.T) {
	h, _ := fakeHost(t, "echo", fakeOpts{prefix: "v1/x"})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", h.URL()+"/v1/x/things/1", nil); r.status != http.StatusTeapot {
		t.Errorf("with prefix v1/x: %d", r.status)
	}
	if r := do(t, "GET", h.URL()+"/api/things/1", nil); r.status != http.StatusNotFound {
		t.Errorf("the default prefix still routes: %d", r.status)
	}
}

func TestHostStopStartKill(t *testing.T) {
	h, out := fakeHost(t, "echo", fakeOpts{})
	base := h.URL()
	wantProblem(t, do(t, "GET", base+"/api/any", nil), http.StatusBadGateway) // not started yet
	if h.PID() != 0 {
		t.Fatal("a PID before Start")
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Start: %v", err)
	}
	first := h.PID()
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if !processGone(first) || h.PID() != 0 {
		t.Fatalf("pid %d still there after Stop", first)
	}
	wantProblem(t, do(t, "GET", base+"/api/any", nil), http.StatusBadGateway)
	if err := h.Stop(); err != nil {
		t.Errorf("stopping a stopped handler: %v", err)
	}

	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.URL() != base || do(t, "GET", base+"/api/any", nil).status != http.StatusTeapot {
		t.Fatal("not forwarding after a restart")
	}
	second := h.PID()
	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	if !processGone(second) {
		t.Fatalf("pid %d still there after Kill", second)
	}
	wantProblem(t, do(t, "GET", base+"/api/any", nil), http.StatusBadGateway)

	// A crash (SIGKILL from outside): the host restarts the handler.
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	third := h.PID()
	if err := syscallKill(third); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the restart after a crash", func() bool { p := h.PID(); return p != 0 && p != third })
	if r := do(t, "GET", base+"/api/any", nil); r.status != http.StatusTeapot {
		t.Fatalf("after the restart: %d %s", r.status, r.raw)
	}
	if !strings.Contains(out.String(), "handler exited unexpectedly (signal: killed): restarting it") {
		t.Error("the crash was not reported")
	}
	if err := h.Stop(); err != nil {
		t.Errorf("Stop after a restart: %v", err)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !refused(base) {
		t.Error("the public address still answers after Close")
	}
	if err := h.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestHostStartFailures(t *testing.T) {
	t.Run("exits before ready", func(t *testing.T) {
		h, out := fakeHost(t, "exit", fakeOpts{})
		err := h.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("Start: %v, want the exit status", err)
		}
		if h.PID() != 0 {
			t.Error("a PID after a failed start")
		}
		if !strings.Contains(out.String(), "[fake error] without a newline\n") {
			t.Errorf("the last partial line was lost:\n%s", out)
		}
	})
	t.Run("never ready", func(t *testing.T) {
		h, _ := fakeHost(t, "never", fakeOpts{startTimeout: 300 * time.Millisecond})
		start := time.Now()
		err := h.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "did not answer GET / within 300ms") {
			t.Fatalf("Start: %v", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("Start took %s", time.Since(start))
		}
	})
	t.Run("context ends", func(t *testing.T) {
		h, _ := fakeHost(t, "never", fakeOpts{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := h.Start(ctx); err == nil {
			t.Fatal("Start succeeded")
		}
	})
	t.Run("ignores SIGTERM: Stop kills it at once", func(t *testing.T) {
		h, out := fakeHost(t, "stubborn", fakeOpts{stopTimeout: 300 * time.Millisecond})
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		pid := h.PID()
		// SIGKILL, as the host's WorkerProcess.Dispose: no SIGTERM to
		// ignore, and no error (the exit was asked for).
		if err := h.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !processGone(pid) {
			t.Error("still running")
		}
		if !strings.Contains(out.String(), "signal: killed") {
			t.Errorf("the kill was not reported:\n%s", out)
		}
	})
}

func TestNewHostNeedsRoutes(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	if _, err := funchost.NewHost(funchost.HostConfig{Name: "x", Command: "/bin/true", AppDir: t.TempDir(), Listener: l}); err == nil {
		t.Error("an app without HTTP triggers was accepted")
	}
}

// fakeClock is the restart policy's clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// crash makes the fake handler exit with code (through ?exit=) and waits
// until the host has dealt with it: a new worker, or none.
func crash(t *testing.T, h *funchost.Host, code int) (old int) {
	t.Helper()
	old = h.PID()
	_, _ = try("GET", h.URL()+"/api/any?exit="+strconv.Itoa(code), nil) // no answer: it exits
	waitFor(t, 20*time.Second, "the exit seen", func() bool { return h.PID() != old })
	return old
}

func TestHostRestartsAsTheHost(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	open := func() { os.WriteFile(gate, nil, 0o644) }
	open()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, out := fakeHost(t, "echo", fakeOpts{env: map[string]string{envGate: gate}, now: clock.Now})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := h.URL()

	t.Run("an error exit restarts it, and requests wait for it", func(t *testing.T) {
		os.Remove(gate) // the restarted worker does not listen before the gate opens
		crash(t, h, 3)
		waitFor(t, 20*time.Second, "a new worker", func() bool { return h.PID() != 0 })
		held := make(chan response, 1)
		go func() { r, _ := try("GET", base+"/api/any", nil); held <- r }()
		waitFor(t, 20*time.Second, "the held request", func() bool {
			return strings.Contains(out.String(), "GET /api/any waits for the handler to start")
		})
		open()
		if r := <-held; r.status != http.StatusTeapot {
			t.Fatalf("the request held during the restart: %d %s", r.status, r.raw)
		}
	})
	t.Run("exit 200 restarts without counting", func(t *testing.T) {
		for range 3 {
			crash(t, h, funchost.IntentionalRestartExitCode)
			waitFor(t, 20*time.Second, "a new worker", func() bool { return h.PID() != 0 })
		}
		if r := do(t, "GET", base+"/api/any", nil); r.status != http.StatusTeapot {
			t.Fatalf("after three exits 200: %d", r.status)
		}
	})
	t.Run("errors more than 30 minutes apart do not add up", func(t *testing.T) {
		clock.Add(funchost.ErrorExitWindow + time.Second)
		crash(t, h, 1) // the first error of a new count
		waitFor(t, 20*time.Second, "a new worker", func() bool { return h.PID() != 0 })
		clock.Add(time.Minute)
		crash(t, h, 1) // the second
		waitFor(t, 20*time.Second, "a new worker", func() bool { return h.PID() != 0 })
		if r := do(t, "GET", base+"/api/any", nil); r.status != http.StatusTeapot {
			t.Fatalf("after two errors: %d", r.status)
		}
	})
	t.Run("the third error within 30 minutes stops the host", func(t *testing.T) {
		clock.Add(funchost.ErrorExitWindow) // exactly 30 minutes: still within
		crash(t, h, 1)
		waitFor(t, 20*time.Second, "the host's stop", func() bool { return strings.Contains(out.String(), "the host stops") })
		if h.PID() != 0 {
			t.Fatal("a worker runs after the third error")
		}
		r := do(t, "GET", base+"/api/any", nil)
		wantProblem(t, r, http.StatusBadGateway)
		if !strings.Contains(string(r.raw), "host stopped") {
			t.Errorf("the answer does not say the host stopped: %s", r.raw)
		}
	})
	t.Run("Start brings it back with a fresh count", func(t *testing.T) {
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		crash(t, h, 1)
		waitFor(t, 20*time.Second, "a new worker", func() bool { return h.PID() != 0 })
	})
	t.Run("exit 0 stays down", func(t *testing.T) {
		crash(t, h, 0)
		if !strings.Contains(out.String(), "exited with status 0: the host does not restart it") {
			t.Fatalf("exit 0 not reported:\n%s", out)
		}
		if h.PID() != 0 {
			t.Fatal("restarted after exit 0")
		}
		wantProblem(t, do(t, "GET", base+"/api/any", nil), http.StatusBadGateway)
	})
}

func TestHostHoldsRequestsBounded(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate") // never opened: the worker never listens
	h, _ := fakeHost(t, "echo", fakeOpts{env: map[string]string{envGate: gate}, startTimeout: time.Minute, holdTimeout: 200 * time.Millisecond})
	go func() { _ = h.Start(context.Background()) }()
	waitFor(t, 20*time.Second, "the worker", func() bool { return h.PID() != 0 })
	r := do(t, "GET", h.URL()+"/api/any", nil)
	wantProblem(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.raw), "200ms") {
		t.Errorf("the answer does not name the bound: %s", r.raw)
	}
}

func TestRebuildQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                "",
		"a=1":             "a=1",
		"a=1&b=2&a=3":     "a=1%2C3&b=2",
		"q=a+b&r=%7e%2f":  "q=a%20b&r=~%2F",
		"flag&x=":         "flag=&x=",
		"bad=%zz&ok=1":    "ok=1",
		"&&k=v&":          "k=v",
		"%C3%A9t%C3%A9=1": "%C3%A9t%C3%A9=1",
	} {
		if got := funchost.RebuildQuery(raw); got != want {
			t.Errorf("RebuildQuery(%q) = %q, want %q", raw, got, want)
		}
	}
}
