package entra_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestLoopbackRoutesRefuseForeignHost: the directory page and every admin
// control refuse a request that comes from loopback but names another host,
// as a page of evil.example would after re-pointing its name at 127.0.0.1
// (DNS rebinding); the same request naming localhost is served.
func TestLoopbackRoutesRefuseForeignHost(t *testing.T) {
	srv := start(t)
	base, err := url.Parse(srv.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.BaseURL()+path, strings.NewReader(body))
		req.Host = host // the Host header; the connection still goes to srv.BaseURL()
		req.Header.Set(entra.AdminHeader, "1")
		resp, err := srv.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mint := `{"user":"bob","resource":"` + entra.TaskAPIClientID + `"}`
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/", ""},
		{http.MethodGet, "/_emulator/stats", ""},
		{http.MethodPost, "/_emulator/stats/reset", ""},
		{http.MethodPost, "/_emulator/keys/rotate", `{}`},
		{http.MethodPost, "/_emulator/fail", `{"endpoint":"token","count":1}`},
		{http.MethodPost, "/_emulator/latency", `{"token_ms":0}`},
		{http.MethodPost, "/_emulator/refresh-tokens/refuse", `{"count":0}`},
		{http.MethodPost, "/_emulator/token", mint},
	}
	kid := srv.SigningKeyID()
	for _, host := range []string{"evil.example", "evil.example:" + base.Port()} {
		for _, r := range routes {
			code, body := send(r.method, r.path, r.body, host)
			if code != http.StatusForbidden || !strings.Contains(body, "DNS rebinding") ||
				strings.Contains(body, entra.TaskAPISecret) || strings.Contains(body, "access_token") {
				t.Errorf("%s %s with Host %s: %d %s, want 403 naming DNS rebinding", r.method, r.path, host, code, body)
			}
		}
	}
	if srv.SigningKeyID() != kid {
		t.Error("a refused rotate rotated the signing key")
	}
	// Served when the Host names this machine (the routes' own tests use
	// 127.0.0.1, the base URL's host).
	for _, host := range []string{"localhost:" + base.Port(), "LOCALHOST:" + base.Port(), "localhost"} {
		for _, r := range routes {
			if code, body := send(r.method, r.path, r.body, host); code >= 300 {
				t.Errorf("%s %s with Host %s: %d %s", r.method, r.path, host, code, body)
			}
		}
	}
	if srv.SigningKeyID() == kid {
		t.Error("rotate with Host localhost did not rotate the signing key")
	}
}
