package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestKeyRotationAuditRecovers: after the authority rotates its signing key
// and retires the old one, and the Audit Service has refreshed its keys,
// the Task API's cached app token (signed by the retired key) is refused
// with invalid_token. The Task API drops it, gets one new token and
// delivers: the next create reports audit_status logged, with no restart.
func TestKeyRotationAuditRecovers(t *testing.T) {
	s := stack(t, nil)
	alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	first := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "before the rotation"})
	if first.status != http.StatusCreated || first.body["audit_status"] != "logged" {
		t.Fatalf("create before the rotation: %d %s", first.status, first.raw)
	}
	op := asApp(t, s, entra.OperatorClientID, entra.OperatorSecret)
	oldRead, err := op.AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}

	// The emulator's rotation control, as a black-box test drives it.
	req, _ := http.NewRequest(http.MethodPost, s.Entra.BaseURL()+"/_emulator/keys/rotate", strings.NewReader(`{"retire_old":true}`))
	req.Header.Set(entra.AdminHeader, "1")
	resp, err := s.Entra.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rotate: %s", resp.Status)
	}

	// A token of the new key makes the Audit Service refresh its keys; from
	// then on the retired key's tokens are refused there.
	newRead, err := asApp(t, s, entra.OperatorClientID, entra.OperatorSecret).AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	afterRotation(t, "the Audit Service accepts a token of the new key", func() bool {
		return call(t, "GET", s.URL("audit")+"/api/audit", newRead.AccessToken, nil).status == http.StatusOK
	})
	if r := call(t, "GET", s.URL("audit")+"/api/audit", oldRead.AccessToken, nil); r.status != http.StatusUnauthorized ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("a token of the retired key at the Audit Service: %d %v", r.status, r.header)
	}

	// alice signs in again (her old token is of the retired key too), and
	// the Task API learns the new key the same way.
	alice = signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
	afterRotation(t, "the Task API accepts a token of the new key", func() bool {
		return call(t, "GET", s.URL("task")+"/api/me", alice, nil).status == http.StatusOK
	})

	issued := s.Entra.Stats().Issued[entra.GrantClientCredentials]
	for i := range 5 {
		r := call(t, "POST", s.URL("task")+"/api/tasks", alice, map[string]string{"title": "after the rotation " + strconv.Itoa(i)})
		if r.status != http.StatusCreated || r.body["audit_status"] != "logged" {
			t.Fatalf("create %d after the rotation: %d %s", i, r.status, r.raw)
		}
	}
	if got := s.Entra.Stats().Issued[entra.GrantClientCredentials] - issued; got != 1 {
		t.Errorf("app tokens issued for 5 creates after the rotation = %d, want 1 (one forced refresh)", got)
	}
}

// afterRotation polls cond until it holds, within a generous bound.
func afterRotation(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60 s: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
