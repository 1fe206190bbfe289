//go:build unix

package main

import (
	"bytes"
	"errors"
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
