package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/examples/internal/extest"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// TestHello runs the handler as the Functions host would (on
// FUNCTIONS_CUSTOMHANDLER_PORT) against the Entra emulator: the route
// function.json declares answers a signed-in user with what a downstream
// API, which validates the On-Behalf-Of token itself, says about them.
func TestHello(t *testing.T) {
	srv := entratest.Start(t, entra.Config{})
	// The downstream API: the Notification Service's registration, checking
	// that the token is for it and delegated (the user's, through this app).
	dv, err := entraauth.New(t.Context(), srv.BaseURL(), entraauth.Config{ClientID: entra.NotificationClientID,
		TenantIDs: []string{entra.HomeTenantID}, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(dv.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := entraauth.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": id.PreferredUsername, "via": id.CallerAppID})
	}), entraauth.Delegated()))
	defer api.Close()

	port := extest.FreePort(t)
	for k, v := range map[string]string{
		"AZURE_AUTHORITY_HOST": srv.BaseURL(), "AZURE_TENANT_ID": entra.HomeTenantID,
		"AZURE_CLIENT_ID": entra.TaskAPIClientID, "AZURE_CLIENT_SECRET": entra.TaskAPISecret,
		"DOWNSTREAM_URL": api.URL, "DOWNSTREAM_SCOPE": entra.NotificationClientID + "/.default",
		"FUNCTIONS_CUSTOMHANDLER_PORT": port, "ALLOWED_ORIGINS": "",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, srv.HTTPClient()) }()
	base := "http://127.0.0.1:" + port
	extest.WaitReady(t, base+"/", stopped)

	route := "/api/" + declaredRoute(t)
	alice := extest.UserToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", "api://"+entra.TaskAPIClientID+"/access_as_user")
	resp, body := extest.Get(t, base+route, alice)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user":"alice@home.handoff.test"`) || !strings.Contains(body, `"via":"`+entra.TaskAPIClientID+`"`) {
		t.Errorf("alice: %d %s", resp.StatusCode, body)
	}
	if resp, body := extest.Get(t, base+route, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	appOnly := extest.AppToken(t, srv, entra.OperatorClientID, entra.OperatorSecret, entra.TaskAPIClientID+"/.default")
	if resp, body := extest.Get(t, base+route, appOnly); resp.StatusCode != http.StatusForbidden {
		t.Errorf("app-only token: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
}

// declaredRoute is the route hello/function.json declares, which the
// handler must serve under the host's /api prefix.
func declaredRoute(t *testing.T) string {
	b, err := os.ReadFile("hello/function.json")
	if err != nil {
		t.Fatal(err)
	}
	var fn struct {
		Bindings []struct{ Type, Route string } `json:"bindings"`
	}
	if err := json.Unmarshal(b, &fn); err != nil || len(fn.Bindings) == 0 || fn.Bindings[0].Type != "httpTrigger" {
		t.Fatalf("hello/function.json: %v %+v", err, fn)
	}
	return fn.Bindings[0].Route
}
