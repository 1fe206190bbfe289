package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// TestTokenAgainstTaskAPI is the "done when": the real Task API
// handler, pointed at a running emulator, accepts what
// `entra-emulator token --user bob --resource <task api>` prints, and
// refuses the --expired one as expired.
func TestTokenAgainstTaskAPI(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	e := startEmulator(t, "-addr", "127.0.0.1:0", "-state-dir", state)
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := trusting(t, caPEM)
	defer hc.CloseIdleConnections()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tasks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cred, err := downstream.ClientSecret(entra.TaskAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := downstream.New(downstream.Config{Authority: e.base, HomeTenantID: entra.HomeTenantID,
		ClientID: entra.TaskAPIClientID, Credential: cred, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	app, err := taskapi.New(t.Context(), taskapi.Config{
		Authority: e.base, HomeTenantID: entra.HomeTenantID, ClientID: entra.TaskAPIClientID,
		TenantIDs: []string{entra.HomeTenantID, entra.SecondTenantID}, HTTPClient: hc,
		Notification: taskapi.Downstream{ClientID: entra.NotificationClientID, URL: "http://127.0.0.1:1"},
		Audit:        taskapi.Downstream{ClientID: entra.AuditClientID, URL: "http://127.0.0.1:1"},
	}, st, tokens, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(app.Handler())
	defer api.Close()

	get := func(flags ...string) (int, string, string) {
		t.Helper()
		args := append([]string{"token", "--url", e.base, "--state-dir", state, "--user", "bob", "--resource", "api://" + entra.TaskAPIClientID}, flags...)
		tok, errOut, err := runQuick(t, args...)
		if err != nil {
			t.Fatalf("token %q: %v\n%s", flags, err, errOut)
		}
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
	}
	if status, _, body := get(); status != http.StatusOK || !strings.Contains(body, entra.BobOID) || !strings.Contains(body, entra.RoleEditor) {
		t.Errorf("bob's token: %d %s", status, body)
	}
	if status, challenge, body := get("--expired"); status != http.StatusUnauthorized || !strings.Contains(challenge+body, "the token has expired") {
		t.Errorf("bob's --expired token: %d %q %s", status, challenge, body)
	}
}
