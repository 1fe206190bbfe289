package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// TestTokenCommand: `entra-emulator token` against a running emulator gives
// bob a token the Task API's validator accepts; --expired gives one it
// rejects as expired; each wrong-on-purpose flag is rejected for its reason.
func TestTokenCommand(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	e := startEmulator(t, "-addr", "127.0.0.1:0", "-state-dir", state)
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := trusting(t, caPEM)
	defer hc.CloseIdleConnections()
	v, err := entraauth.New(t.Context(), e.base, entraauth.Config{
		ClientID: entra.TaskAPIClientID, TenantIDs: []string{entra.HomeTenantID, entra.SecondTenantID}, HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(flags ...string) string {
		t.Helper()
		args := append([]string{"token", "--url", e.base, "--state-dir", state}, flags...)
		out, errOut, err := runQuick(t, args...)
		if err != nil {
			t.Fatalf("token %q: %v\n%s", flags, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	bob := []string{"--user", "bob", "--resource", "api://" + entra.TaskAPIClientID}
	id, err := v.Validate(t.Context(), token(bob...))
	if err != nil {
		t.Fatalf("the Task API refuses bob's token: %v", err)
	}
	if id.ObjectID != entra.BobOID || !id.HasRole(entra.RoleEditor) || !id.HasScope(entra.ScopeAccessAsUser) {
		t.Errorf("identity %+v", id)
	}

	cases := map[string][]string{
		"the token has expired":             {"--expired"},
		"not valid yet":                     {"--not-yet-valid"},
		"not for this API":                  {"--audience", entra.AuditClientID},
		"issuer":                            {"--issuer", "https://sts.windows.net/" + entra.HomeTenantID + "/"},
		"signature does not verify":         {"--bad-signature"},
		"signing key (kid)":                 {"--unknown-kid"},
		"v1 tokens are not accepted":        {"--v1"},
		"lacks exp or nbf":                  {"--claims", `{"nbf":null}`},
		"the token's tenant is not allowed": {"--tenant", entra.ThirdTenantID, "--user", "frank"},
	}
	for want, flags := range cases {
		_, err := v.Validate(t.Context(), token(append(append([]string{}, bob...), flags...)...))
		var ae *entraauth.Error
		if !errors.As(err, &ae) || !strings.Contains(ae.Description, want) {
			t.Errorf("token %q: Validate = %v, want a rejection naming %q", flags, err, want)
		} else if ae.Expired() != (flags[0] == "--expired") {
			t.Errorf("token %q: Expired() = %v", flags, ae.Expired())
		}
	}

	// --json prints the whole response; --lifetime sets expires_in; --app mints app-only.
	var resp entra.TokenResponse
	if err := json.Unmarshal([]byte(token("--app", entra.OperatorClientID, "--resource", entra.AuditClientID, "--lifetime", "10m", "--json")), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != entra.AuditClientID+"/.default" || resp.AccessToken == "" {
		t.Errorf("--json response %+v", resp)
	}

	// Refusals are one clear line.
	_, _, err = runQuick(t, "token", "--url", e.base, "--state-dir", state, "--user", "nobody", "--resource", entra.TaskAPIClientID)
	if err == nil || !strings.Contains(err.Error(), `"nobody" is in no tenant`) {
		t.Errorf("unknown user: %v", err)
	}
	_, _, err = runQuick(t, "token", "--url", e.base, "--user", "bob", "--resource", entra.TaskAPIClientID, "--ca", "/dev/null")
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("--ca /dev/null: %v", err)
	}
}

func TestTokenCommandUntrusted(t *testing.T) {
	e := startEmulator(t, "-addr", "127.0.0.1:0")
	_, _, err := runQuick(t, "token", "--url", e.base, "--ca", "", "--user", "bob", "--resource", entra.TaskAPIClientID)
	if err == nil || !strings.Contains(err.Error(), "pass --ca") {
		t.Errorf("an untrusted emulator: %v", err)
	}
}

func TestTokenCommandNoEmulator(t *testing.T) {
	// Port 1 on loopback: nothing listens there unprivileged.
	_, _, err := runQuick(t, "token", "--url", "https://127.0.0.1:1", "--user", "bob", "--resource", entra.TaskAPIClientID)
	if err == nil || !strings.Contains(err.Error(), "no Entra emulator answers at https://127.0.0.1:1") || strings.Contains(err.Error(), "\n") {
		t.Errorf("no emulator: %v", err)
	}
	for _, args := range [][]string{
		{"token", "--resource", entra.TaskAPIClientID},
		{"token", "--user", "bob"},
		{"token", "--user", "bob", "--resource", "x", "--claims", "[1]"},
		{"token", "--user", "bob", "--resource", "x", "--lifetime", "1.5s"},
	} {
		if _, _, err := runQuick(t, args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
