package entra_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

func TestHealth(t *testing.T) {
	clk := &clock{}
	srv := entratest.Start(t, entra.Config{Now: clk.Now})
	get := func() entra.Health {
		t.Helper()
		resp, err := srv.HTTPClient().Get(srv.BaseURL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("GET /health: %s %v", resp.Status, resp.Header)
		}
		var h entra.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := get()
	if h.Status != "ok" || h.Version == "" || h.BaseURL != srv.BaseURL() || len(h.Tenants) != 3 || h.Tenants[0].ID != entra.HomeTenantID {
		t.Errorf("health = %+v", h)
	}
	if len(h.KeyIDs) != 1 || h.KeyIDs[0] != srv.SigningKeyID() || h.SigningKeyID != srv.SigningKeyID() {
		t.Errorf("key ids %v, signing %s, want [%s]", h.KeyIDs, h.SigningKeyID, srv.SigningKeyID())
	}
	clk.Advance(90 * time.Minute)
	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	h2 := get()
	if h2.UptimeSeconds < 90*60 || h2.UptimeSeconds > 90*60+hangGuardSeconds {
		t.Errorf("uptime after 90 min = %d s", h2.UptimeSeconds)
	}
	if len(h2.KeyIDs) != 2 || h2.KeyIDs[0] != srv.SigningKeyID() || h2.KeyIDs[1] != h.KeyIDs[0] {
		t.Errorf("after rotation key ids = %v, signing %s", h2.KeyIDs, srv.SigningKeyID())
	}
}

// hangGuardSeconds bounds the real time a test may take between two reads.
const hangGuardSeconds = 600
