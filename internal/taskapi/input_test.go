package taskapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInputRules: a title refuses every C0 and C1 control character, a
// description every one but tab and line feed, and both refuse the
// invisible bidirectional controls, with a 400 naming the field; the body
// must be strict JSON.
func TestInputRules(t *testing.T) {
	h := newHarness(t, nil)
	create := func(title, desc string) answer {
		b, _ := json.Marshal(map[string]string{"title": title, "description": desc})
		return h.do(t, "POST", "/api/tasks", h.alice, string(b))
	}
	for _, title := range []string{
		"nul\x00", "bell\a", "ansi \x1b[31mred", "line\nbreak", "carriage\rreturn", "tab\there", "del\x7f",
		"next line\u0085", "csi\u009b31m", "invoice\u202Egnp.exe", "lre\u202A", "pdf\u202C", "lri\u2066x\u2069",
		"fsi\u2068", "mark\u200F", "lrm\u200E", "alm\u061C",
	} {
		r := create(title, "")
		if r.status != http.StatusBadRequest || !strings.HasPrefix(str(r.body["detail"]), "title must not contain") {
			t.Errorf("title %q: %d %s", title, r.status, r.raw)
		}
	}
	for _, desc := range []string{"cr\r\n", "nul\x00", "esc\x1b", "c1\u0080", "rlo\u202E", "pdi\u2069", "rlm\u200F"} {
		r := create("ok", desc)
		if r.status != http.StatusBadRequest || !strings.HasPrefix(str(r.body["detail"]), "description must not contain") {
			t.Errorf("description %q: %d %s", desc, r.status, r.raw)
		}
	}
	// Right-to-left scripts, emoji, tabs and line feeds in a description are text.
	for _, c := range [][2]string{
		{"مرحبا بالعالم", "שלום\tעולם\nline two"},
		{"Ship it 🚀 — naïve café", "a\n\nb\tc"},
		{"  padded  ", ""},
	} {
		if r := create(c[0], c[1]); r.status != http.StatusCreated {
			t.Errorf("%q / %q: %d %s", c[0], c[1], r.status, r.raw)
		}
	}
	// PATCH holds titles to the same rule.
	task := create("to rename", "")
	id := str(task.body["id"])
	if r := h.do(t, "PATCH", "/api/tasks/"+id, h.alice, `{"title":"x\u202Eyz"}`); r.status != http.StatusBadRequest ||
		!strings.Contains(str(r.body["detail"]), "title") {
		t.Errorf("PATCH with U+202E: %d %s", r.status, r.raw)
	}
	// Strict JSON.
	for body, want := range map[string]string{
		"{\"title\":\"a\xffb\"}":                "UTF-8",
		`{"title":"\ud800"}`:                    "surrogate",
		`{"title":"a","title":"b"}`:             "twice",
		`{"title":"a","Title":"b"}`:             "case",
		`{"Title":"a"}`:                         `unknown field "Title"`,
		`{"title":"a","description":"b","x":1}`: `unknown field "x"`,
		`[]`:                                    "must be a JSON object",
		`{"title":["a"]}`:                       `field "title" must be a string`,
		`{"title":"a","description":{"x":"y"}}`: `field "description" must be a string`,
	} {
		r := h.do(t, "POST", "/api/tasks", h.alice, body)
		if r.status != http.StatusBadRequest || !strings.Contains(str(r.body["detail"]), want) {
			t.Errorf("%q: %d %s, want 400 with %q", body, r.status, r.raw, want)
		}
	}
}

// TestProblemTextsNameNoInternals: problem details never name Go types,
// packages or store internals.
func TestProblemTextsNameNoInternals(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/tasks", `[]`},
		{"POST", "/api/tasks", `"x"`},
		{"POST", "/api/tasks", `{"title":1}`},
		{"POST", "/api/tasks", `{"title":"a","description":false}`},
		{"PATCH", "/api/tasks/0123", `{"completed":"yes"}`},
		{"PATCH", "/api/tasks/0123", `[true]`},
		{"GET", "/api/tasks?cursor=not-a-cursor", ""},
		{"GET", "/api/outbox?cursor=%25%25", ""},
		{"GET", "/api/tasks?limit=x", ""},
	} {
		r := h.do(t, c.method, c.path, h.alice, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s %s: %d %s, want 400", c.method, c.path, c.body, r.status, r.raw)
		}
		for _, leak := range []string{"taskapi", "createRequest", "updateRequest", "store:", "invalid record", "json:", "Go value", "sqlite", "*bool", "*string"} {
			if strings.Contains(string(r.raw), leak) {
				t.Errorf("%s %s %s: %s names %q", c.method, c.path, c.body, r.raw, leak)
			}
		}
	}
}

// TestIfMatch: If-Match is "*" or a list of entity tags compared strongly
// (RFC 9110 §13.1.1): a list holding the current ETag matches, a weak tag
// never does.
func TestIfMatch(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(t, "POST", "/api/tasks", h.alice, createBody)
	id, etag := str(r.body["id"]), r.header.Get("ETag")
	patch := func(ifMatch ...string) answer {
		var hdr []string
		for _, v := range ifMatch {
			hdr = append(hdr, "If-Match", v)
		}
		a := h.do(t, "PATCH", "/api/tasks/"+id, h.alice, `{"completed":true}`, hdr...)
		if a.status == http.StatusOK {
			etag = a.header.Get("ETag")
		}
		return a
	}
	for _, c := range []struct {
		name   string
		header func() []string
		status int
	}{
		{"the current ETag", func() []string { return []string{etag} }, 200},
		{"a list holding it", func() []string { return []string{`"stale", ` + etag + `, "other"`} }, 200},
		{"a list over two lines", func() []string { return []string{`"stale"`, etag} }, 200},
		{"a list without spaces", func() []string { return []string{`"a",` + etag} }, 200},
		{"*", func() []string { return []string{"*"} }, 200},
		{"a stale ETag", func() []string { return []string{`"stale"`} }, 412},
		{"a list of stale ones", func() []string { return []string{`"a", "b", "c"`} }, 412},
		{"the current ETag, weak", func() []string { return []string{"W/" + etag} }, 412},
		{"weak and stale", func() []string { return []string{"W/" + etag + `, "stale"`} }, 412},
		{"unquoted", func() []string { return []string{strings.Trim(etag, `"`)} }, 400},
		{"* in a list", func() []string { return []string{`*, ` + etag} }, 400},
		{"unterminated", func() []string { return []string{`"abc`} }, 400},
		{"garbage after a tag", func() []string { return []string{etag + ` x`} }, 400},
		{"empty list", func() []string { return []string{` , `} }, 400},
		{"too many tags", func() []string { return []string{strings.Repeat(`"x", `, maxIfMatchTags) + etag} }, 400},
	} {
		if got := patch(c.header()...); got.status != c.status {
			t.Errorf("If-Match %s: %d %s, want %d", c.name, got.status, got.raw, c.status)
		}
	}
	// A task that does not exist is 404 whatever If-Match says.
	for _, v := range []string{"*", etag, `"a", ` + etag} {
		if got := h.do(t, "PATCH", "/api/tasks/00000000000000000000000000000000", h.alice, `{"completed":true}`, "If-Match", v); got.status != http.StatusNotFound {
			t.Errorf("PATCH of no task, If-Match %s: %d", v, got.status)
		}
	}
	// DELETE reads If-Match the same way.
	if got := h.do(t, "DELETE", "/api/tasks/"+id, h.alice, "", "If-Match", `"stale", W/`+etag); got.status != http.StatusPreconditionFailed {
		t.Errorf("DELETE with a weak current ETag: %d", got.status)
	}
	if got := h.do(t, "DELETE", "/api/tasks/"+id, h.alice, "", "If-Match", `"stale", `+etag); got.status != http.StatusOK {
		t.Errorf("DELETE with a list holding the ETag: %d %s", got.status, got.raw)
	}
}

// TestRoutesAsTheHost: the host forwards /API/TASKS and /api/tasks/; the
// Task API serves them.
func TestRoutesAsTheHost(t *testing.T) {
	h := newHarness(t, nil)
	created := h.do(t, "POST", "/Api/Tasks/", h.alice, createBody)
	if created.status != http.StatusCreated {
		t.Fatalf("POST /Api/Tasks/: %d %s", created.status, created.raw)
	}
	id := str(created.body["id"])
	for _, path := range []string{"/API/TASKS", "/api/tasks/", "/api/TASKS/" + id, "/API/tasks/" + id + "/"} {
		if r := h.do(t, "GET", path, h.alice, ""); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.status, r.raw)
		}
	}
	if r := h.do(t, "GET", "/api/tasks//", h.alice, ""); r.status != http.StatusNotFound {
		t.Errorf("GET /api/tasks//: %d, want 404 (one trailing slash only)", r.status)
	}
}

// TestHangUpIsInfo: a create whose caller hung up is logged at Info as a
// hang-up, not as a storage error.
func TestHangUpIsInfo(t *testing.T) {
	h := newHarness(t, nil)
	var logs logBuffer
	h.app.log = slog.New(slog.NewTextHandler(&logs, nil))
	// A first request caches the signing keys, so the next one reaches the store.
	if r := h.do(t, "GET", "/api/tasks", h.alice, ""); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("POST", "/api/tasks", strings.NewReader(createBody)).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+h.alice)
	h.h.ServeHTTP(httptest.NewRecorder(), req)
	out := logs.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "the caller hung up") || strings.Contains(out, "level=ERROR") {
		t.Errorf("log:\n%s\nwant one Info line saying the caller hung up, no Error", out)
	}
}
