package funcapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

func testRouter() *funcapp.Router {
	rt := funcapp.NewRouter()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.PathValue("id") + " " + strconv.Itoa(len(b))))
	})
	rt.Handle("GET", "/api/tasks", ok)
	rt.Handle("POST", "/api/tasks", ok)
	rt.Handle("GET", "/api/tasks/{id}", ok)
	rt.Handle("DELETE", "/api/tasks/{id}", ok)
	return rt
}

func do(t *testing.T, h http.Handler, method, path string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, body)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestRouter(t *testing.T) {
	h := funcapp.Wrap(testRouter(), funcapp.Config{})
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/", 200, ""},
		{"GET", "/api/tasks", 200, ""},
		{"GET", "/api/tasks/abc", 200, ""},
		{"PUT", "/api/tasks", 405, "GET, POST"},
		{"PATCH", "/api/tasks/abc", 405, "GET, DELETE"},
		{"GET", "/api/nothing", 404, ""},
		{"GET", "/api/tasks/a/b", 404, ""},
	} {
		rec := do(t, h, tc.method, tc.path, nil, nil)
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if tc.status >= 400 {
			var p map[string]any
			if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p["status"] != float64(tc.status) {
				t.Errorf("%s %s: not a problem document: %s", tc.method, tc.path, rec.Body)
			}
		}
		if rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, rec.Header().Get("Allow"), tc.allow)
		}
	}
	if got := len(testRouter().Routes()); got != 4 {
		t.Errorf("Routes() has %d routes, want 4", got)
	}
}

func TestBodyLimit(t *testing.T) {
	h := funcapp.Wrap(testRouter(), funcapp.Config{MaxBodyBytes: 10})
	if rec := do(t, h, "POST", "/api/tasks", strings.NewReader(strings.Repeat("x", 11)), nil); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("11 bytes with a limit of 10: %d", rec.Code)
	}
	if rec := do(t, h, "POST", "/api/tasks", strings.NewReader(strings.Repeat("x", 10)), nil); rec.Code != 200 {
		t.Errorf("10 bytes with a limit of 10: %d", rec.Code)
	}
}

func TestCORS(t *testing.T) {
	h := funcapp.Wrap(testRouter(), funcapp.Config{AllowedOrigins: []string{"http://localhost:3000"},
		CORSExposedHeaders: []string{"ETag", "WWW-Authenticate"}})
	pre := map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
	rec := do(t, h, "OPTIONS", "/api/tasks", nil, pre)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	rec = do(t, h, "GET", "/api/tasks", nil, map[string]string{"Origin": "http://localhost:3000"})
	if rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("simple request: %v", rec.Header())
	}
	pre["Origin"] = "https://evil.example"
	if rec := do(t, h, "OPTIONS", "/api/tasks", nil, pre); rec.Code != 403 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", rec.Code, rec.Header())
	}
	if rec := do(t, h, "GET", "/api/tasks", nil, map[string]string{"Origin": "https://evil.example"}); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got CORS headers")
	}
	// Without ALLOWED_ORIGINS (a Functions host does CORS) nothing is added.
	plain := funcapp.Wrap(testRouter(), funcapp.Config{})
	if rec := do(t, plain, "GET", "/api/tasks", nil, map[string]string{"Origin": "http://localhost:3000"}); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS answered without ALLOWED_ORIGINS")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := funcapp.ConfigFromEnv(env(map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "7071", "ALLOWED_ORIGINS": "http://localhost:3000/, https://app.example"}))
	if err != nil || cfg.Port != 7071 || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[0] != "http://localhost:3000" {
		t.Errorf("cfg %+v err %v", cfg, err)
	}
	for _, bad := range []map[string]string{{}, {"FUNCTIONS_CUSTOMHANDLER_PORT": "x"}, {"FUNCTIONS_CUSTOMHANDLER_PORT": "70000"},
		{"FUNCTIONS_CUSTOMHANDLER_PORT": "7071", "ALLOWED_ORIGINS": "*"}} {
		if _, err := funcapp.ConfigFromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestServeShutsDownGracefully: a request in flight when the context ends
// (SIGTERM) completes; the server then stops.
func TestServeShutsDownGracefully(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	rt := funcapp.NewRouter()
	rt.Handle("GET", "/api/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.Write([]byte("done"))
	}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- funcapp.Serve(ctx, funcapp.Config{Port: freePort(t), Ready: ready}, rt) }()
	addr := <-ready
	if resp, err := http.Get("http://" + addr + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readiness probe: %v %v", resp, err)
	}
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond) // let Shutdown begin; the assertion below does not depend on timing
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("in-flight request: %q", b)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	srv.Close()
	return port
}

// TestCORSLists: with no lists the preflight allows the neutral defaults;
// an app's own lists replace them.
func TestCORSLists(t *testing.T) {
	origin := "http://localhost:3000"
	pre := map[string]string{"Origin": origin, "Access-Control-Request-Method": "PATCH"}
	preflight := func(cfg funcapp.Config) http.Header {
		cfg.AllowedOrigins = []string{origin}
		rec := do(t, funcapp.Wrap(testRouter(), cfg), "OPTIONS", "/api/tasks", nil, pre)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("preflight: %d", rec.Code)
		}
		return rec.Header()
	}
	h := preflight(funcapp.Config{})
	if got := h.Get("Access-Control-Allow-Methods"); got != "GET, HEAD, POST" {
		t.Errorf("default methods %q", got)
	}
	if got := h.Get("Access-Control-Allow-Headers"); got != "Authorization, Content-Type" {
		t.Errorf("default headers %q", got)
	}
	if got := h.Get("Access-Control-Expose-Headers"); got != "WWW-Authenticate" {
		t.Errorf("default exposed headers %q", got)
	}
	if got := h.Get("Access-Control-Max-Age"); got != "600" {
		t.Errorf("max age %q", got)
	}
	h = preflight(funcapp.Config{CORSMethods: []string{"GET", "PATCH"}, CORSHeaders: []string{"Authorization", "If-Match"},
		CORSExposedHeaders: []string{"ETag"}})
	if h.Get("Access-Control-Allow-Methods") != "GET, PATCH" || h.Get("Access-Control-Allow-Headers") != "Authorization, If-Match" ||
		h.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("configured lists: %v", h)
	}
}
