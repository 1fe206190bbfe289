package entra_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestAdminRoutesRefuseCORS: a web page cannot drive the admin routes. A
// browser's preflight gets no grant, and no admin response, however sent,
// carries an Access-Control-Allow-* header; the token endpoints MSAL.js
// needs keep their CORS.
func TestAdminRoutesRefuseCORS(t *testing.T) {
	srv := start(t)
	hc := srv.HTTPClient()
	const evil = "https://evil.example"
	do := func(method, path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.BaseURL()+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	noCORS := func(what string, resp *http.Response) {
		t.Helper()
		for name := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "access-control-") {
				t.Errorf("%s: %s answered with %s: %q", what, resp.Status, name, resp.Header.Get(name))
			}
		}
	}

	for _, path := range []string{"/_emulator/keys/rotate", "/_emulator/latency", "/_emulator/fail", "/_emulator/stats", "/_emulator/stats/reset", "/_emulator/nope"} {
		resp := do(http.MethodOptions, path, "", "Origin", evil, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "x-emulator-admin")
		if resp.StatusCode < 400 {
			t.Errorf("preflight %s: %s, want a refusal", path, resp.Status)
		}
		noCORS("preflight "+path, resp)
	}

	// A cross-origin request that skipped the preflight (a non-browser
	// client naming an Origin) is served, but its answer grants no page.
	kid := srv.SigningKeyID()
	resp := do(http.MethodPost, "/_emulator/keys/rotate", `{}`, "Origin", evil, entra.AdminHeader, "1", "Content-Type", "application/json")
	if resp.StatusCode != http.StatusNoContent || srv.SigningKeyID() == kid {
		t.Fatalf("rotate from a loopback tool: %s", resp.Status)
	}
	noCORS("POST /_emulator/keys/rotate", resp)
	noCORS("POST /_emulator/latency", do(http.MethodPost, "/_emulator/latency", `{"token_ms":0}`, "Origin", evil, entra.AdminHeader, "1"))
	noCORS("GET /_emulator/stats", do(http.MethodGet, "/_emulator/stats", "", "Origin", evil, entra.AdminHeader, "1"))
	noCORS("POST without the admin header", do(http.MethodPost, "/_emulator/latency", `{"token_ms":0}`, "Origin", evil))

	// The SPA's endpoints still answer its preflights.
	for _, path := range []string{"/organizations/oauth2/v2.0/token", "/" + entra.HomeTenantID + "/oauth2/v2.0/token", "/common/discovery/v2.0/keys"} {
		resp := do(http.MethodOptions, path, "", "Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
			t.Errorf("SPA preflight %s: %s %v", path, resp.Status, resp.Header)
		}
	}
}
