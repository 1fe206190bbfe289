package entra_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// chromiumGuard bounds every wait on the browser; it is never a timing assertion.
const chromiumGuard = time.Minute

// chromiumPage is a headless Chromium driven over the DevTools protocol.
type chromiumPage struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

// startChromium launches Chromium trusting the emulator's CA by its SPKI
// hash (nothing else is trusted), in a throwaway profile. It skips the test
// when there is no Chromium (CHROMIUM, else /usr/bin/chromium).
func startChromium(t *testing.T, srv *entra.Server) *chromiumPage {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("no Chromium at %s", bin)
	}
	block, _ := pem.Decode(srv.CAPEM())
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile as the test ends, and a failed removal would fail the test.
	profile, err := os.MkdirTemp("", "entra-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1", "--window-size=1100,900",
		"--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(sum[:]), "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait(); _ = os.RemoveAll(profile) })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := regexp.MustCompile(`DevTools listening on ws://([^/]+)/`).FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var host string
	select {
	case host = <-found:
	case <-time.After(chromiumGuard):
		t.Fatal("Chromium printed no DevTools address")
	}
	return &chromiumPage{t: t, ws: dialPage(t, host)}
}

// dialPage connects to the chromiumPage's first page target.
func dialPage(t *testing.T, host string) *websocket.Conn {
	t.Helper()
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var targets []struct{ Type, WebSocketDebuggerURL string }
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			ws, err := websocket.Dial(tg.WebSocketDebuggerURL, "", "http://127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })
			return ws
		}
	}
	t.Fatal("Chromium has no page target")
	return nil
}

// call sends one DevTools command and returns its result.
func (b *chromiumPage) call(method string, params any) json.RawMessage {
	b.t.Helper()
	res, err := b.try(method, params)
	if err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	return res
}

// try sends one DevTools command; an error the browser answers is returned,
// a broken connection fails the test.
func (b *chromiumPage) try(method string, params any) (json.RawMessage, error) {
	b.t.Helper()
	b.id++
	_ = b.ws.SetDeadline(time.Now().Add(chromiumGuard))
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": b.id, "method": method, "params": params}); err != nil {
		b.t.Fatal(err)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		if msg.ID != b.id {
			continue // an event
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s", msg.Error.Message)
		}
		return msg.Result, nil
	}
}

// evaluate runs JavaScript in the page: its value as JSON, or the error.
func (b *chromiumPage) evaluate(js string) (json.RawMessage, error) {
	b.t.Helper()
	raw, err := b.try("Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails any `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, fmt.Errorf("%s: %v", js, r.ExceptionDetails)
	}
	return r.Result.Value, nil
}

// eval runs JavaScript that must succeed.
func (b *chromiumPage) eval(js string) json.RawMessage {
	b.t.Helper()
	v, err := b.evaluate(js)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds (bounded, generously);
// while a page loads the condition may throw, which counts as false.
func (b *chromiumPage) waitFor(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(chromiumGuard)
	for {
		// A navigation in progress may answer an error: that is "not yet".
		if v, err := b.evaluate("(() => { try { return Boolean(" + js + ") } catch (e) { return false } })()"); err == nil && string(v) == "true" {
			return
		}
		if time.Now().After(deadline) {
			text, _ := b.evaluate("document.body ? document.body.innerText : ''")
			b.t.Fatalf("waiting for %s; the page says: %s", what, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *chromiumPage) navigate(url string) {
	b.t.Helper()
	b.call("Page.navigate", map[string]any{"url": url})
	b.waitFor("the page "+url, fmt.Sprintf(`location.href.startsWith(%q) && document.readyState === "complete"`, url))
}

func (b *chromiumPage) screenshot(file string) {
	b.t.Helper()
	var r struct{ Data []byte }
	if err := json.Unmarshal(b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false}), &r); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(file, r.Data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestDeviceCodeChromium: MSAL Go's device code sign-in completes with the
// code entered, and bob picked, on the emulator's pages in Chromium. With
// UPDATE_SCREENSHOTS=1 it refreshes the directory page's screenshot in docs/.
func TestDeviceCodeChromium(t *testing.T) {
	srv := start(t)
	b := startChromium(t, srv)
	pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
	ctx, cancel := context.WithTimeout(t.Context(), chromiumGuard)
	defer cancel()
	dc, err := pc.AcquireTokenByDeviceCode(ctx, []string{taskAPIScope})
	if err != nil {
		t.Fatal(err)
	}
	b.navigate(dc.Result.VerificationURL)
	b.eval(fmt.Sprintf(`document.querySelector("#otc").value = %q; document.querySelector('button[value="next"]').click()`, strings.ToLower(dc.Result.UserCode)))
	b.waitFor("the sign-in page", `document.title.startsWith("Sign in")`)
	b.eval(`document.querySelector('button[data-username="bob@home.handoff.test"]').click()`)
	b.waitFor("the signed-in page", `document.body.innerText.includes("signed in to Handoff Dev Client")`)
	res, err := dc.AuthenticationResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := taskAPIValidator(t, srv).Validate(ctx, res.AccessToken)
	if err != nil || id.ObjectID != entra.BobOID {
		t.Fatalf("bob's token: %+v, %v", id, err)
	}

	b.navigate(srv.BaseURL() + "/")
	b.waitFor("the directory page", `document.querySelector("#app-`+entra.TaskAPIClientID+`") !== null`)
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		b.screenshot(filepath.Join("..", "..", "docs", "emulator-directory.png"))
		b.eval(`document.querySelector("#app-` + entra.DevClientID + `").scrollIntoView()`)
		b.screenshot(filepath.Join("..", "..", "docs", "emulator-directory-app.png"))
	}
}
