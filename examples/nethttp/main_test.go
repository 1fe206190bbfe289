package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/examples/internal/extest"
)

// TestMe runs the server against the Entra emulator: a signed-in user of
// an accepted tenant is answered, and every other caller refused with the
// status RFC 6750 says.
func TestMe(t *testing.T) {
	srv := entratest.Start(t, entra.Config{})
	port := extest.FreePort(t)
	t.Setenv("AZURE_AUTHORITY_HOST", srv.BaseURL())
	t.Setenv("AZURE_CLIENT_ID", entra.TaskAPIClientID)
	t.Setenv("AZURE_TENANT_ID", entra.HomeTenantID+","+entra.SecondTenantID)
	t.Setenv("PORT", port)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, srv.HTTPClient()) }()
	base := "http://127.0.0.1:" + port
	extest.WaitReady(t, base+"/healthz", stopped)

	scope := "api://" + entra.TaskAPIClientID + "/access_as_user"
	erin := extest.UserToken(t, srv, entra.SecondTenantID, "erin@fabrikam.handoff.test", scope)
	if resp, body := extest.Get(t, base+"/me", erin); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"username":"erin@fabrikam.handoff.test"`) || !strings.Contains(body, `"tenant":"`+entra.SecondTenantID+`"`) {
		t.Errorf("erin: %d %s", resp.StatusCode, body)
	}
	frank := extest.UserToken(t, srv, entra.ThirdTenantID, "frank@northwind.handoff.test", scope)
	appOnly := extest.AppToken(t, srv, entra.OperatorClientID, entra.OperatorSecret, entra.TaskAPIClientID+"/.default")
	for name, tc := range map[string]struct {
		token  string
		status int
		error  string
	}{
		"no token":              {"", http.StatusUnauthorized, ""},
		"a tenant not accepted": {frank, http.StatusUnauthorized, `error="invalid_token"`},
		"an app-only token":     {appOnly, http.StatusForbidden, `error="insufficient_scope"`},
		"a signature altered":   {erin[:len(erin)-4] + "AAAA", http.StatusUnauthorized, `error="invalid_token"`},
	} {
		resp, body := extest.Get(t, base+"/me", tc.token)
		if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.error) {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
}
