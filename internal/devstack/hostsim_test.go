//go:build unix

package devstack_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
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
}

// fakeHost serves a fake app behind a Host that runs this test binary as
// its handler in the given mode. It is closed when the test ends.
func fakeHost(t *testing.T, mode string, o fakeOpts) (*devstack.Host, *syncBuffer) {
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
	h, err := devstack.NewHost(devstack.HostConfig{
		Name: "fake", Command: exe, AppDir: appDir, HostJSON: hostJSON, Listener: l,
		// GOCOVERDIR: under go test -cover the handler (this binary) would
		// otherwise warn on its output that it has nowhere to write coverage.
		Env:          map[string]string{envFakeHandler: mode, "SETTING": "value", "GOCOVERDIR": t.TempDir()},
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

func TestLoadRoutesMatchesTheApps(t *testing.T) {
	prefix, err := devstack.RoutePrefix(filepath.Join(repoRoot(), "host.json"))
	if err != nil || prefix != "api" {
		t.Fatalf("route prefix %q, %v; want api", prefix, err)
	}
	for app, want := range map[string][]funcapp.Route{
		devstack.AppTask: taskapi.Routes(), devstack.AppNotification: notifyapi.Routes(), devstack.AppAudit: auditapi.Routes(),
	} {
		routes, err := devstack.LoadRoutes(filepath.Join(repoRoot(), "functions", app), prefix)
		if err != nil {
			t.Fatal(err)
		}
		var got []funcapp.Route
		for _, rt := range routes {
			for _, m := range rt.Methods {
				got = append(got, funcapp.Route{Method: m, Pattern: rt.Template})
			}
		}
		key := func(r funcapp.Route) string { return r.Method + " " + r.Pattern }
		gotKeys, wantKeys := mapSlice(got, key), mapSlice(want, key)
		slices.Sort(gotKeys)
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("%s: function.json declares %v, the app serves %v", app, gotKeys, wantKeys)
		}
	}
}

func mapSlice[T any](s []T, f func(T) string) []string {
	var out []string
	for _, v := range s {
		out = append(out, f(v))
	}
	return out
}

func TestLoadRoutesRefusesWhatItCannotMatch(t *testing.T) {
	for _, route := range []string{"files/{name}.txt", "a/{*rest}/b", "a/{opt?}/b", "a//b", "a/{}"} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "f"), 0o755)
		doc := `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"` + route + `"}]}`
		os.WriteFile(filepath.Join(dir, "f", "function.json"), []byte(doc), 0o644)
		if _, err := devstack.LoadRoutes(dir, "api"); err == nil {
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
		if e.Method != "POST" || e.Path != "/api/things/42" || e.RawQuery != "b=2&a=%2F&a=1" || e.Body != `{"x":1}` {
			t.Errorf("forwarded %s %s ? %s body %q", e.Method, e.Path, e.RawQuery, e.Body)
		}
		if e.Header.Get("X-Test") != "kept" || e.Header.Get("Authorization") != "Bearer abc" ||
			e.Header.Get("Content-Type") != "application/json" || e.Header.Get("X-Forwarded-For") != "10.0.0.1" {
			t.Errorf("headers forwarded: %v", e.Header)
		}
		if e.Host != strings.TrimPrefix(base, "http://") {
			t.Errorf("Host %q, want the public address", e.Host)
		}
	})

	t.Run("environment is the settings alone", func(t *testing.T) {
		var e echo
		json.Unmarshal(do(t, "GET", base+"/api/any", nil).raw, &e)
		slices.Sort(e.Env)
		var keys []string
		for _, kv := range e.Env {
			keys = append(keys, kv[:strings.IndexByte(kv, '=')])
		}
		want := []string{envFakeHandler, devstack.EnvCustomHandlerPort, "GOCOVERDIR", "SETTING"}
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("the handler's environment has %v, want %v", keys, want)
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
		{"PUT", "/api/things/1", http.StatusMethodNotAllowed, "DELETE, GET, POST"},
		{"GET", "/api/things", http.StatusNotFound, ""},
		{"GET", "/api/things/1/2", http.StatusNotFound, ""},
		{"PATCH", "/api/any", http.StatusTeapot, ""}, // no methods: every method
		{"GET", "/api/files", http.StatusTeapot, ""},
		{"GET", "/api/files/a/b/c", http.StatusTeapot, ""},
		{"POST", "/api/files/a", http.StatusMethodNotAllowed, "GET"},
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
		if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q Allow %q, want %d problem+json Allow %q", c.method, c.path, r.status,
				r.header.Get("Content-Type"), r.header.Get("Allow"), c.status, c.allow)
		}
	}

	t.Run("preflight forwarded", func(t *testing.T) {
		r := do(t, "OPTIONS", base+"/api/files/x", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "GET")
		var e echo
		json.Unmarshal(r.raw, &e)
		if r.status != http.StatusTeapot || e.Method != "OPTIONS" {
			t.Errorf("preflight: %d %s", r.status, r.raw)
		}
		if r := do(t, "OPTIONS", base+"/api/files/x", nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("a plain OPTIONS on a GET route: %d, want 405", r.status)
		}
		if r := do(t, "OPTIONS", base+"/api/nope", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "GET"); r.status != http.StatusNotFound {
			t.Errorf("preflight on an undeclared path: %d, want 404", r.status)
		}
	})

	if err := h.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, want := range []string{"[fake] fake handler starting\n", "[fake] to stderr\n", "[fake] without a newline\n", "[fake] fake handler stopped\n", "[fake host] handler exited (exit status 0)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
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

	// A crash: the host notices, answers 502, and Stop reports it.
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	third := h.PID()
	if err := syscallKill(third); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.PID() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the host did not notice the crash")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantProblem(t, do(t, "GET", base+"/api/any", nil), http.StatusBadGateway)
	if !strings.Contains(out.String(), "handler exited unexpectedly") {
		t.Error("the crash was not reported")
	}
	if err := h.Stop(); err == nil || !strings.Contains(err.Error(), "unexpectedly") {
		t.Errorf("Stop after a crash: %v", err)
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
		if !strings.Contains(out.String(), "[fake] without a newline\n") {
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
	t.Run("ignores SIGTERM", func(t *testing.T) {
		h, out := fakeHost(t, "stubborn", fakeOpts{stopTimeout: 300 * time.Millisecond})
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		pid := h.PID()
		start := time.Now()
		err := h.Stop()
		if err == nil || !strings.Contains(err.Error(), "was killed") {
			t.Fatalf("Stop: %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("killed after %s, before the stop timeout", d)
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
	if _, err := devstack.NewHost(devstack.HostConfig{Name: "x", Command: "/bin/true", AppDir: t.TempDir(), Listener: l}); err == nil {
		t.Error("an app without HTTP triggers was accepted")
	}
}
