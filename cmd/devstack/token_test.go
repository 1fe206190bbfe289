//go:build unix

package main

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// devstackToken runs bin/devstack token args in testRoot, as a shell
// beside make run would, and returns its stdout, stderr and exit code.
func devstackToken(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testRoot, "bin", "devstack"), append([]string{"token"}, args...)...)
	cmd.Dir = testRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestTokenCommand(t *testing.T) {
	startDevstack(t)
	for _, tc := range []struct {
		args   []string
		claims map[string]string
	}{
		{[]string{"alice"}, map[string]string{"aud": entra.TaskAPIClientID, "azp": entra.DevClientID, "oid": entra.AliceOID, "scp": entra.ScopeAccessAsUser}},
		{[]string{"erin@fabrikam.handoff.test"}, map[string]string{"aud": entra.TaskAPIClientID, "tid": entra.SecondTenantID, "oid": entra.ErinOID}},
		{[]string{"--for", "notification", "alice"}, map[string]string{
			"aud": entra.NotificationClientID, "azp": entra.TaskAPIClientID, "oid": entra.AliceOID, "scp": "Notify.Send Notify.Read"}},
		{[]string{"--app", "operator", "--for", "audit"}, map[string]string{
			"aud": entra.AuditClientID, "azp": entra.OperatorClientID, "roles": entra.RoleAuditRead, "idtyp": "app"}},
		{[]string{"--app", "task"}, map[string]string{"aud": entra.AuditClientID, "azp": entra.TaskAPIClientID, "roles": entra.RoleAuditWrite}},
	} {
		name := strings.Join(tc.args, " ")
		stdout, stderr, code := devstackToken(t, tc.args...)
		if code != 0 {
			t.Errorf("devstack token %s: exit %d: %s", name, code, stderr)
			continue
		}
		token := strings.TrimSuffix(stdout, "\n")
		claims, err := decode(token)
		if err != nil || strings.ContainsAny(token, " \n") {
			t.Errorf("devstack token %s printed %q, want only a JWT (%v)", name, stdout, err)
			continue
		}
		for k, want := range tc.claims {
			if got := claim(claims, k); got != strings.ReplaceAll(want, " ", ",") && got != want {
				t.Errorf("devstack token %s: %s = %q, want %q", name, k, got, want)
			}
		}
	}
}

func TestTokenCommandFailsLoudly(t *testing.T) {
	startDevstack(t)
	for _, tc := range []struct {
		args []string
		want string // on stderr
	}{
		{[]string{"--password", "wrong", "alice"}, "AADSTS50126"},
		{[]string{"--for", "notification", "frank@northwind.handoff.test"}, "AADSTS500011"},
		{[]string{"mallory"}, "no such user"},
		{[]string{"--app", "nobody"}, `--app "nobody"`},
		{[]string{"--for", "audit", "alice"}, "app-only tokens: --app operator --for audit"},
		{[]string{"--app", "operator", "--for", "task"}, "app-only tokens are for the Audit Service"},
		{[]string{}, "name one user"},
	} {
		name := strings.Join(tc.args, " ")
		stdout, stderr, code := devstackToken(t, tc.args...)
		if code == 0 || stdout != "" || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "devstack: ") || strings.Contains(stderr, "devstack: devstack:") {
			t.Errorf("devstack token %s: exit %d, stdout %q, stderr %q; want a non-zero exit and one %q line on stderr", name, code, stdout, stderr, tc.want)
		}
	}
}

func TestTokenCommandWithoutADevstack(t *testing.T) {
	_, stderr, code := devstackToken(t, "-state", t.TempDir(), "alice")
	if code != 1 || !strings.Contains(stderr, "no devstack is running") || !strings.Contains(stderr, "make run") {
		t.Errorf("exit %d, stderr %q; want exit 1 and that no devstack is running", code, stderr)
	}
}

// TestTokenCommandWrongOnPurpose: each token `devstack token` mints wrong on
// purpose is refused by the running app it is for, for that defect, while
// the same request with a token from the real flow is answered.
func TestTokenCommandWrongOnPurpose(t *testing.T) {
	p := startDevstack(t)
	call := func(url, token string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	for _, tc := range []struct {
		args []string
		url  string
		want string // in WWW-Authenticate; "" means 200
	}{
		{[]string{"bob"}, p.info.Task + "/api/me", ""},
		{[]string{"--expired", "bob"}, p.info.Task + "/api/me", "expired"},
		{[]string{"--not-yet-valid", "bob"}, p.info.Task + "/api/me", "not valid yet"},
		{[]string{"--bad-signature", "bob"}, p.info.Task + "/api/me", "signature"},
		{[]string{"--audience", "api://someone-else", "bob"}, p.info.Task + "/api/me", "not for this API"},
		{[]string{"--issuer", "https://evil.example/", "bob"}, p.info.Task + "/api/me", "issuer"},
		{[]string{"--v1", "bob"}, p.info.Task + "/api/me", "v1"},
		{[]string{"--expired", "--for", "notification", "alice"}, p.info.Notification + "/api/notifications", "expired"},
		{[]string{"--expired", "--app", "operator"}, p.info.Audit + "/api/audit", "expired"},
	} {
		name := strings.Join(tc.args, " ")
		stdout, stderr, code := devstackToken(t, tc.args...)
		if code != 0 {
			t.Errorf("devstack token %s: exit %d: %s", name, code, stderr)
			continue
		}
		status, challenge := call(tc.url, strings.TrimSpace(stdout))
		switch {
		case tc.want == "" && status != http.StatusOK:
			t.Errorf("%s: %d %q, want 200", name, status, challenge)
		case tc.want != "" && (status != http.StatusUnauthorized || !strings.Contains(challenge, tc.want)):
			t.Errorf("%s: %d %q, want 401 naming %q", name, status, challenge, tc.want)
		}
	}
}
