package entra_test

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

func directoryPage(t *testing.T, srv *entra.Server) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.BaseURL()+"/", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET / headers %v", resp.Header)
	}
	return string(body)
}

// appSection is the page's section of one app, its snippets unescaped.
func appSection(t *testing.T, page, clientID string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<section id="app-` + clientID + `">(.*?)</section>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no section for app %s", clientID)
	}
	return m[1]
}

func snippet(t *testing.T, section, title string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<p>` + regexp.QuoteMeta(title) + `:</p><pre>(.*?)</pre>`).FindStringSubmatch(section)
	if m == nil {
		t.Fatalf("no snippet %q in:\n%s", title, section)
	}
	return html.UnescapeString(m[1])
}

func TestDirectoryPage(t *testing.T) {
	srv := start(t)
	// A consent given on the sign-in page shows too.
	_, user := deviceCode(t, srv, entra.TaskAPIClientID)
	if err := enterDeviceCode(srv, srv.BaseURL()+"/devicelogin", user, "bob@home.handoff.test"); err != nil {
		t.Fatal(err)
	}
	page := directoryPage(t, srv)
	for _, want := range []string{
		entra.HomeTenantID, "Fabrikam", "bob@home.handoff.test", entra.BobOID, entra.DefaultUserPassword, "Task API: Editor",
		"Handoff SPA → Task API: access_as_user, for all users (admin consent)",
		"Task API → Task API: access_as_user, for bob@home.handoff.test (given on the sign-in page)",
		"http://localhost:3000 (SPA)", "api://" + entra.TaskAPIClientID, "Admin (User)", "AuditLog.Write (Application)",
	} {
		if !strings.Contains(page, html.EscapeString(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	task := appSection(t, page, entra.TaskAPIClientID)
	if !regexp.MustCompile(`Secrets <span class="dev">\(development only\)</span></th><td><code>dev: ` + entra.TaskAPISecret).MatchString(task) {
		t.Errorf("the Task API's secret is not shown as development only:\n%s", task)
	}
	if strings.Contains(page, "Azure Key Vault") {
		t.Error("Microsoft's own apps are listed")
	}
	spa := snippet(t, appSection(t, page, entra.SPAClientID), "msal-browser")
	for _, want := range []string{`clientId: "` + entra.SPAClientID, `authority: "` + srv.BaseURL() + `/organizations"`, "knownAuthorities", `"http://localhost:3000"`} {
		if !strings.Contains(spa, want) {
			t.Errorf("msal-browser snippet lacks %q:\n%s", want, spa)
		}
	}
	goSnippet := snippet(t, appSection(t, page, entra.OperatorClientID), "MSAL Go (confidential client)")
	if !strings.Contains(goSnippet, "WithInstanceDiscovery(false)") || !strings.Contains(goSnippet, srv.Authority(entra.HomeTenantID)) {
		t.Errorf("MSAL Go snippet:\n%s", goSnippet)
	}
	if az := snippet(t, appSection(t, page, entra.DevClientID), "azidentity (device code)"); !strings.Contains(az, "DisableInstanceDiscovery: true") {
		t.Errorf("azidentity snippet:\n%s", az)
	}
	if tok := snippet(t, appSection(t, page, entra.NotificationClientID), "A token for this API, from the command line"); !strings.Contains(tok, "--resource "+entra.NotificationClientID) {
		t.Errorf("API snippet:\n%s", tok)
	}
}

// TestDirectoryPageCurl runs the page's curl snippets: they work as printed.
func TestDirectoryPageCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv := start(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	page := directoryPage(t, srv)
	run := func(cmd string) map[string]any {
		t.Helper()
		c := exec.Command("sh", "-c", cmd)
		c.Env = append(os.Environ(), "ENTRA_EMULATOR_CA="+ca)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		tok := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(string(out))
		if tok == nil {
			t.Fatalf("%s printed no token: %s", cmd, out)
		}
		return claims(t, tok[1])
	}
	c := run(snippet(t, appSection(t, page, entra.OperatorClientID), "curl (client credentials)"))
	if c["aud"] != entra.AuditClientID || c["roles"].([]any)[0] != entra.RoleAuditRead {
		t.Errorf("the operator's curl token: %v", c)
	}
	pw := snippet(t, appSection(t, page, entra.DevClientID), "curl (password grant, for scripts)")
	pw = strings.NewReplacer("USER", "bob@home.handoff.test", "PASSWORD", entra.DefaultUserPassword).Replace(pw)
	if c := run(pw); c["oid"] != entra.BobOID || c["scp"] != entra.ScopeAccessAsUser {
		t.Errorf("the dev client's curl token: %v", c)
	}
}

func TestDirectoryPageGuards(t *testing.T) {
	srv := start(t)
	r := httptest.NewRequest(http.MethodGet, srv.BaseURL()+"/", nil)
	r.RemoteAddr = "198.51.100.4:4000"
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), entra.TaskAPISecret) {
		t.Errorf("a non-loopback caller: %d %s", w.Code, w.Body)
	}

	// Everything the directory says is escaped.
	dir := entra.DefaultDirectory()
	dir.Applications[0].DisplayName = `<script>alert("app")</script>`
	dir.Tenants[0].Users[1].Name = `<img src=x onerror=alert(1)>`
	evil := entratest.Start(t, entra.Config{Directory: dir})
	page := directoryPage(t, evil)
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img") {
		t.Error("the page renders markup from the directory")
	}
	if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "&lt;img") {
		t.Error("the escaped names are missing")
	}
}
