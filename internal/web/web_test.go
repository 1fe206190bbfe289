package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/web"
)

func TestDecodeJSON(t *testing.T) {
	type req struct {
		Title string `json:"title"`
		N     int    `json:"n"`
	}
	for _, tc := range []struct {
		body   string
		status int
		detail string
	}{
		{`{"title":"a","n":1}`, 200, ""},
		{``, 400, "empty"},
		{`{"title":`, 400, "malformed"},
		{`{"title":"a"} {}`, 400, "after the JSON object"},
		{`{"title":"a","extra":1}`, 400, "unknown field"},
		{`{"n":"x"}`, 400, `"n"`},
		{`{"title":"` + strings.Repeat("x", 100) + `"}`, 413, "larger than"},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		r.Body = http.MaxBytesReader(rec, r.Body, 64)
		var v req
		ok := web.DecodeJSON(rec, r, &v)
		if ok != (tc.status == 200) {
			t.Errorf("%q: ok = %v", tc.body, ok)
			continue
		}
		if ok {
			continue
		}
		var p map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != tc.status || !strings.Contains(p["detail"].(string), tc.detail) {
			t.Errorf("%q: %d %v", tc.body, rec.Code, p)
		}
	}
}

func TestNewListNeverNull(t *testing.T) {
	b, _ := json.Marshal(web.NewList[int](nil, ""))
	if string(b) != `{"items":[]}` {
		t.Errorf("%s", b)
	}
}
