package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/web"
)

type strictReq struct {
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Done        *bool   `json:"completed"`
	Tags        []int   `json:"tags"`
	Meta        any     `json:"meta"`
	Ptr         *string `json:"ptr"`
}

// decode runs DecodeJSON on body and returns ok, the status and the detail.
func decode(t *testing.T, body string) (bool, int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	var v strictReq
	ok := web.DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(body)), &v)
	if ok {
		return true, 200, ""
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%q: problem body %q: %v", body, rec.Body, err)
	}
	return false, rec.Code, fmt.Sprint(p["detail"])
}

func TestDecodeJSONStrict(t *testing.T) {
	for _, tc := range []struct {
		name, body, detail string // detail "" means accepted
	}{
		{"plain", `{"title":"a","description":"b"}`, ""},
		{"nested objects may repeat keys across objects", `{"meta":{"a":{"a":1},"b":[{"a":1},{"a":2}]},"title":"x"}`, ""},
		{"surrogate pair", `{"title":"\ud83d\ude80"}`, ""},
		{"escaped backslash then u", `{"title":"\\ud800"}`, ""},
		{"duplicate key", `{"title":"a","title":"b"}`, `"title" appears twice`},
		{"case variant after", `{"title":"a","Title":"b"}`, `differ only in case`},
		{"case variant before", `{"TITLE":"b","title":"a"}`, `unknown field "TITLE"`},
		{"case variant alone", `{"Title":"a"}`, `unknown field "Title"`},
		{"kelvin sign folds to k", `{"meta":{"k":1,"\u212a":2}}`, `differ only in case`},
		{"long s folds to s", `{"meta":{"s":1,"ſ":2}}`, `differ only in case`},
		{"duplicate nested", `{"meta":{"x":1,"y":{"z":1,"z":2}}}`, `"z" appears twice`},
		{"duplicate in array of objects", `{"meta":[{"q":1,"q":1}]}`, `"q" appears twice`},
		{"invalid UTF-8", "{\"title\":\"a\xffb\"}", "not valid UTF-8"},
		{"overlong UTF-8", "{\"title\":\"\xc0\xaf\"}", "not valid UTF-8"},
		{"lone high surrogate", `{"title":"a\ud800b"}`, "lone UTF-16 surrogate"},
		{"lone low surrogate", `{"title":"\udc00"}`, "lone UTF-16 surrogate"},
		{"high then not low", `{"title":"\ud800\u0041"}`, "lone UTF-16 surrogate"},
		{"high at the end", `{"title":"\ud800"}`, "lone UTF-16 surrogate"},
		{"array body", `[1,2]`, "must be a JSON object"},
		{"string body", `"x"`, "must be a JSON object"},
		{"wrong type string", `{"title":5}`, `field "title" must be a string`},
		{"wrong type bool", `{"completed":"yes"}`, `field "completed" must be a boolean`},
		{"wrong type array", `{"tags":{}}`, `field "tags" must be an array`},
		{"wrong type number", `{"tags":["x"]}`, `must be a number`},
		{"unknown field", `{"nope":1}`, `unknown field "nope"`},
		{"trailing", `{"title":"a"} {}`, "after the JSON object"},
		{"empty", ``, "empty"},
		{"blank", "  \n", "empty"},
		{"malformed", `{"title":`, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, status, detail := decode(t, tc.body)
			if tc.detail == "" {
				if !ok {
					t.Fatalf("refused: %d %s", status, detail)
				}
				return
			}
			if ok || status != http.StatusBadRequest || !strings.Contains(detail, tc.detail) {
				t.Fatalf("ok %v, %d %q; want 400 with %q", ok, status, detail, tc.detail)
			}
			for _, leak := range []string{"web.", "web_test", "strictReq", "json:", "Go ", "interface", "*"} {
				if strings.Contains(detail, leak) {
					t.Errorf("detail %q names an internal (%q)", detail, leak)
				}
			}
		})
	}
}

func TestStoreErrorTextsArePublic(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: title is 300 characters long", store.ErrInvalid),
		fmt.Errorf("%w: table: create task: the service refused the record: HTTP 400 PropertyValueTooLarge", store.ErrInvalid),
		fmt.Errorf("%w: sqlite: create task: database is locked", store.ErrUnavailable),
		store.ErrNotFound, store.ErrPreconditionFailed, errors.New("taskapi.createRequest: boom"),
	} {
		rec := httptest.NewRecorder()
		web.StoreError(rec, err)
		body := rec.Body.String()
		for _, leak := range []string{"store:", "sqlite", "table:", "HTTP 400", "taskapi", "invalid record", "locked", "boom"} {
			if strings.Contains(body, leak) {
				t.Errorf("StoreError(%v) answered %s, which names %q", err, body, leak)
			}
		}
		if rec.Code < 400 || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("StoreError(%v): %d %s", err, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

func TestCallerGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	hangUp := fmt.Errorf("%w: sqlite: append: %w", store.ErrUnavailable, context.Canceled)
	if web.CallerGone(r, hangUp) {
		t.Error("CallerGone before the caller left")
	}
	cancel()
	if !web.CallerGone(r, hangUp) {
		t.Error("not CallerGone after the caller left")
	}
	if !web.CallerGone(r, errors.New("sqlite: interrupted (9)")) {
		t.Error("not CallerGone for the driver's own word for the cancellation")
	}
	if web.CallerGone(r, nil) {
		t.Error("CallerGone without a failure")
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 0)
	defer dcancel()
	<-dctx.Done()
	if web.CallerGone(r.WithContext(dctx), context.DeadlineExceeded) {
		t.Error("CallerGone for a deadline, which is the server's")
	}
}
