package entraauth_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// TestAuthorityForm: New takes an authority as https://host, a trailing
// slash allowed, and refuses anything else (New does no I/O).
func TestAuthorityForm(t *testing.T) {
	cfg := entraauth.Config{ClientID: authClientID, TenantIDs: []string{authTenant}}
	for authority, ok := range map[string]bool{
		"https://login.example":          true,
		"https://login.example/":         true,
		"https://login.example//":        true, // one slash trimmed, the path "/" left
		"https://login.example/tenant":   false,
		"https://login.example/a/":       false,
		"https://login.example?tenant=x": false,
		"http://login.example":           false,
		"https://":                       false,
		"https://login.example/%zz":      false,
	} {
		_, err := entraauth.New(context.Background(), authority, cfg)
		if ok != (err == nil) {
			t.Errorf("New(%q): error %v, want accepted %v", authority, err, ok)
		}
	}
}

// TestRefreshIntervalAtItsMinimum: a key refresh interval equal to the
// minimum refresh interval is accepted; below it, refused.
func TestRefreshIntervalAtItsMinimum(t *testing.T) {
	for every, ok := range map[time.Duration]bool{time.Minute: true, time.Minute - time.Second: false} {
		_, err := entraauth.New(context.Background(), "https://login.example", entraauth.Config{
			ClientID: authClientID, TenantIDs: []string{authTenant},
			MinRefreshInterval: time.Minute, KeyRefreshInterval: every,
		})
		if ok != (err == nil) {
			t.Errorf("KeyRefreshInterval %v with MinRefreshInterval 1m: error %v, want accepted %v", every, err, ok)
		}
	}
}

// TestChallengeOnlyWith401And403: a malformed request (two Authorization
// headers) is answered 400 with no WWW-Authenticate challenge: the
// challenge (RFC 7235, RFC 6750) belongs to 401, and to 403 for scope.
func TestChallengeOnlyWith401And403(t *testing.T) {
	a := newTestAuthority(t)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Authorization", "Bearer "+a.token(t, nil, nil))
	r.Header.Add("Authorization", "Bearer "+a.token(t, nil, nil))
	rec := httptest.NewRecorder()
	a.validator(t, entraauth.Config{}).Protect(okHandler()).ServeHTTP(rec, r)
	if rec.Code != 400 {
		t.Fatalf("two Authorization headers: %d, want 400", rec.Code)
	}
	if got := rec.Header().Values("WWW-Authenticate"); len(got) != 0 {
		t.Errorf("400 with a challenge %q, want none", got)
	}
}
