package appmain

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

// TestCORSAllowsIdempotencyKey: a SPA's create sends Idempotency-Key and
// If-Match, and reads ETag and Location, so the apps' preflight grants them
// (the library's own defaults are narrower).
func TestCORSAllowsIdempotencyKey(t *testing.T) {
	cfg := funcapp.Config{AllowedOrigins: []string{"http://localhost:3000"}}
	setCORS(&cfg)
	h := funcapp.Wrap(funcapp.NewRouter(), cfg)
	r := httptest.NewRequest("OPTIONS", "/api/tasks", nil)
	r.Header.Set("Origin", "http://localhost:3000")
	r.Header.Set("Access-Control-Request-Method", "PATCH")
	r.Header.Set("Access-Control-Request-Headers", "authorization, content-type, idempotency-key, if-match")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	hdr := rec.Header()
	if rec.Code != http.StatusNoContent {
		t.Fatalf("preflight: %d", rec.Code)
	}
	for name, want := range map[string][]string{
		"Access-Control-Allow-Headers":  {"Authorization", "Content-Type", "If-Match", "Idempotency-Key"},
		"Access-Control-Allow-Methods":  {"GET", "POST", "PATCH", "DELETE"},
		"Access-Control-Expose-Headers": {"ETag", "WWW-Authenticate", "Location"},
	} {
		for _, w := range want {
			if !strings.Contains(hdr.Get(name), w) {
				t.Errorf("%s %q lacks %s", name, hdr.Get(name), w)
			}
		}
	}
}
