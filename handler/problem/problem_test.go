package problem_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/handoff-dev/handoff/handler/problem"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.Details{Status: 403, Detail: "no", Extra: map[string]any{"error": "insufficient_scope", "status": 999, "title": "spoof"}})
	if rec.Code != 403 || rec.Header().Get("Content-Type") != problem.ContentType || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	// Standard members win over extensions of the same name.
	if body["status"] != float64(403) || body["title"] != "Forbidden" || body["type"] != "about:blank" ||
		body["detail"] != "no" || body["error"] != "insufficient_scope" {
		t.Errorf("body = %v", body)
	}
}
