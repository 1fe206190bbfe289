package funcapp_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/funchost"
)

// TestRouterMatchesAsTheHost: one table, read by both the host simulator
// (internal/funchost's rules, those of the Functions host) and the Router:
// a request the host forwards reaches the same route in the Router, with
// the parameter as sent; what the host does not forward it answers with an
// empty 404 itself (a declared path with an undeclared method included, as
// the host's method constraint fails), and the Router serves none of it.
// The routes are the Task API's function.json files.
func TestRouterMatchesAsTheHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The handler is never started: the host answers 502 for what it would
	// forward, and 404 for what it would not.
	host, err := funchost.NewHost(funchost.HostConfig{
		Name: "task", Command: "never-started", AppDir: "../../../functions/task", HostJSON: "../../../host.json",
		Listener: l, Env: map[string]string{"AUDIT_SWEEP_SCHEDULE": "0 */5 * * * *"}, TimersManual: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })

	rt := funcapp.NewRouter()
	var served struct{ pattern, id string }
	for _, route := range host.Routes() {
		for _, m := range route.Methods {
			rt.Handle(m, route.Template, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.pattern, served.id = r.Pattern, r.PathValue("id")
			}))
		}
	}
	for _, c := range []struct {
		method, path string
		pattern, id  string // what the Router serves ("" for none)
	}{
		{"GET", "/api/tasks", "GET /api/tasks", ""},
		{"POST", "/api/tasks", "POST /api/tasks", ""},
		{"GET", "/API/TASKS", "GET /api/tasks", ""},
		{"POST", "/Api/Tasks/", "POST /api/tasks", ""},
		{"GET", "/api/tasks//", "", ""},
		{"GET", "//api/tasks", "", ""},
		{"GET", "/api//tasks", "", ""},
		{"GET", "/api/tasks/abc", "GET /api/tasks/{id}", "abc"},
		{"PATCH", "/API/Tasks/AbC/", "PATCH /api/tasks/{id}", "AbC"},
		{"DELETE", "/api/TASKS/0f0f", "DELETE /api/tasks/{id}", "0f0f"},
		{"GET", "/api/tasks/a%20b", "GET /api/tasks/{id}", "a b"},
		{"GET", "/api/tasks/a%2Fb", "", ""},
		{"GET", "/api/tasks/a/b", "", ""},
		{"PUT", "/api/tasks", "", ""},
		{"PUT", "/API/TASKS/x", "", ""},
		{"POST", "/api/me", "", ""},
		{"GET", "/api/ME", "GET /api/me", ""},
		{"GET", "/api/outbox/", "GET /api/outbox", ""},
		{"GET", "/api", "", ""},
		{"GET", "/tasks", "", ""},
		{"POST", "/sweep", "", ""},
		{"GET", "/api/tasksx", "", ""},
	} {
		hostRec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, "http://localhost"+c.path, nil)
		host.ServeHTTP(hostRec, req)
		forwarded := hostRec.Code == http.StatusBadGateway
		if forwarded != (c.pattern != "") {
			t.Errorf("%s %s: the host answers %d; the table says served %q", c.method, c.path, hostRec.Code, c.pattern)
			continue
		}
		if !forwarded && (hostRec.Code != http.StatusNotFound || hostRec.Body.Len() != 0) {
			t.Errorf("%s %s: the host answers %d %q, want an empty 404", c.method, c.path, hostRec.Code, hostRec.Body)
		}
		if rt, ok := host.Match(c.method, req.URL.Path); ok && c.method+" "+rt.Template != c.pattern {
			t.Errorf("%s %s: the host forwards through %s %s, the table says %q", c.method, c.path, c.method, rt.Template, c.pattern)
		}
		served.pattern, served.id = "", ""
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest(c.method, "http://localhost"+c.path, nil))
		if served.pattern != c.pattern || served.id != c.id {
			t.Errorf("%s %s: the Router served %q (id %q), want %q (id %q)", c.method, c.path, served.pattern, served.id, c.pattern, c.id)
		}
	}
}
