package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// hangGuard bounds every wait, so a broken emulator fails the test instead
// of hanging it. It is never a timing assertion.
const hangGuard = 30 * time.Second

// lockedBuffer collects the emulator's log for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// emulator is run serving in the background.
type emulator struct {
	base   string // from the ready line
	cancel context.CancelFunc
	done   chan error
	stderr *lockedBuffer
	exited bool
}

// startEmulator runs the command with args and waits for its ready line.
func startEmulator(t *testing.T, args ...string) *emulator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	e := &emulator{cancel: cancel, done: make(chan error, 1), stderr: &lockedBuffer{}}
	go func() {
		err := run(ctx, args, pw, e.stderr)
		pw.Close()
		e.done <- err
	}()
	ready := make(chan string, 1)
	go func() {
		// Drain stdout to the end so run never blocks writing it.
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if line := sc.Text(); !sent && strings.HasPrefix(line, "ready ") {
				ready <- strings.TrimPrefix(line, "ready ")
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		if !e.exited {
			if err := e.stop(t); err != nil {
				t.Errorf("run: %v", err)
			}
		}
	})
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	select {
	case e.base = <-ready:
		return e
	case err := <-e.done:
		e.exited = true
		t.Fatalf("run %q exited before ready: %v\nstderr:\n%s", args, err, e.stderr)
	case <-guard.C:
		t.Fatalf("run %q: no ready line\nstderr:\n%s", args, e.stderr)
	}
	return nil
}

// stop cancels the context run was given and returns what run returned.
func (e *emulator) stop(t *testing.T) error {
	t.Helper()
	e.cancel()
	e.exited = true
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	select {
	case err := <-e.done:
		return err
	case <-guard.C:
		t.Fatalf("run did not return after its context was cancelled\nstderr:\n%s", e.stderr)
		return nil
	}
}

// runQuick runs a command that is expected to return at once (print or fail).
func runQuick(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("run %q did not return", args)
	}
	return out.String(), errOut.String(), err
}

func TestPrintConfig(t *testing.T) {
	out, _, err := runQuick(t, "-print-config")
	if err != nil {
		t.Fatalf("run -print-config: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var d entra.Directory
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("-print-config output is not a directory: %v\n%s", err, out)
	}
	if dec.More() {
		t.Error("-print-config printed more than one JSON value")
	}
	var tenants []string
	for _, tn := range d.Tenants {
		tenants = append(tenants, tn.ID)
	}
	if want := []string{entra.HomeTenantID, entra.SecondTenantID, entra.ThirdTenantID}; !slices.Equal(tenants, want) {
		t.Errorf("tenants %q, want %q", tenants, want)
	}
	app := d.Application(entra.TaskAPIClientID)
	if app == nil {
		t.Fatal("no Task API application")
	}
	if !slices.ContainsFunc(app.Secrets, func(s entra.Secret) bool { return s.Value == entra.TaskAPISecret }) {
		t.Errorf("Task API secrets %+v lack %q", app.Secrets, entra.TaskAPISecret)
	}

	// The printed directory is a valid -config, and prints back the same.
	file := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	again, _, err := runQuick(t, "-config", file, "-print-config")
	if err != nil {
		t.Fatalf("printed directory rejected as -config: %v", err)
	}
	if again != out {
		t.Error("printing a printed directory changes it")
	}
}

func TestNonLoopbackRefused(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0"} {
		t.Run(addr, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			_, _, err := runQuick(t, "-addr", addr, "-state-dir", state)
			if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "-allow-non-loopback") {
				t.Fatalf("run -addr %s = %v, want a refusal naming loopback and -allow-non-loopback", addr, err)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("refused run created its state directory (%v)", err)
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:7070": true,
		"[::1]:7070":     true,
		"localhost:7070": true,
		"0.0.0.0:7070":   false,
		"[::]:7070":      false,
		":7070":          false,
		"10.0.0.1:7070":  false,
		"example.com:80": false,
		"127.0.0.1":      false, // no port
	} {
		if err := checkLoopback(addr, false); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if err := checkLoopback("0.0.0.0:7070", true); err != nil {
		t.Errorf("checkLoopback allowed: %v", err)
	}
}

func TestNonLoopbackAllowed(t *testing.T) {
	state := t.TempDir()
	e := startEmulator(t, "-addr", "0.0.0.0:0", "-allow-non-loopback", "-state-dir", state)
	// A wildcard address is no usable issuer: the base URL names loopback.
	m := regexp.MustCompile(`^https://127\.0\.0\.1:([1-9][0-9]*)$`).FindStringSubmatch(e.base)
	if m == nil {
		t.Fatalf("ready %q, want https://127.0.0.1:PORT", e.base)
	}
	// It serves, on loopback too, with the CA's certificate.
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := trusting(t, caPEM)
	resp, err := hc.Get("https://127.0.0.1:" + m[1] + "/common/discovery/v2.0/keys")
	if err != nil {
		t.Fatalf("GET keys: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET keys: %s", resp.Status)
	}
	hc.CloseIdleConnections()
	if err := e.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestServe(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state") // created by run
	e := startEmulator(t, "-addr", "127.0.0.1:0", "-state-dir", state)
	if !regexp.MustCompile(`^https://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(e.base) {
		t.Fatalf("ready %q, want https://127.0.0.1:PORT", e.base)
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("state directory mode %v, want 0700", perm)
	}
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := trusting(t, caPEM)
	checkDiscovery(t, hc, e.base)
	hc.CloseIdleConnections()
	if err := e.stop(t); err != nil {
		t.Fatalf("run after cancel: %v\nstderr:\n%s", err, e.stderr)
	}

	// A restart on the same state directory keeps the CA the client trusts.
	e2 := startEmulator(t, "-addr", "127.0.0.1:0", "-state-dir", state)
	caPEM2, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caPEM2, caPEM) {
		t.Error("restart replaced ca.pem")
	}
	checkDiscovery(t, hc, e2.base)
	hc.CloseIdleConnections()
	if err := e2.stop(t); err != nil {
		t.Fatalf("second run after cancel: %v", err)
	}
}

// trusting is a client that trusts the CA in caPEM and nothing else.
func trusting(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: tr, Timeout: hangGuard}
}

func checkDiscovery(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	resp, err := hc.Get(base + "/common/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("GET discovery: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET discovery: %s", resp.Status)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if want := base + "/{tenantid}/v2.0"; doc.Issuer != want {
		t.Errorf("issuer %q, want %q", doc.Issuer, want)
	}
	if want := base + "/common/oauth2/v2.0/token"; doc.TokenEndpoint != want {
		t.Errorf("token_endpoint %q, want %q", doc.TokenEndpoint, want)
	}
	if want := base + "/common/discovery/v2.0/keys"; doc.JWKSURI != want {
		t.Errorf("jwks_uri %q, want %q", doc.JWKSURI, want)
	}
}

func TestBadConfig(t *testing.T) {
	const tenant = `{"id": "10000000-0000-4000-8000-000000000001", "display_name": "Home", "domain": "home.example"}`
	for _, tc := range []struct {
		name, json string
		want       []string // all in the error
	}{
		{"unknown top-level field", `{"tenants": [` + tenant + `], "tenats": []}`, []string{"unknown field", `"tenats"`}},
		{"unknown tenant field", `{"tenants": [{"id": "10000000-0000-4000-8000-000000000001", "tenant_id": "x"}]}`, []string{"unknown field", `"tenant_id"`}},
		{"invalid tenant GUID", `{"tenants": [{"id": "not-a-guid"}]}`, []string{"tenant", `"not-a-guid"`, "GUID"}},
		{"upper-case tenant GUID", `{"tenants": [{"id": "ABCDEF00-0000-4000-8000-000000000001"}]}`, []string{"tenant", `"ABCDEF00-0000-4000-8000-000000000001"`, "GUID"}},
		{"invalid user oid", `{"tenants": [{"id": "10000000-0000-4000-8000-000000000001", "users": [{"oid": "b0000000", "preferred_username": "a@home.example"}]}]}`, []string{"a@home.example", `"b0000000"`, "GUID"}},
		{"invalid application GUID", `{"tenants": [` + tenant + `], "applications": [{"client_id": "app-1", "display_name": "App", "home_tenant": "10000000-0000-4000-8000-000000000001", "sign_in_audience": "AzureADMyOrg"}]}`, []string{"application", `"app-1"`, "GUID"}},
		{"not JSON", `tenants: []`, []string{"directory"}},
		{"no tenants", `{"tenants": []}`, []string{"no tenants"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "directory.json")
			if err := os.WriteFile(file, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			// Also without -print-config: a bad directory must fail before serving.
			for _, args := range [][]string{{"-config", file, "-print-config"}, {"-config", file, "-addr", "127.0.0.1:0"}} {
				out, _, err := runQuick(t, args...)
				if err == nil {
					t.Fatalf("run %q accepted the directory; printed:\n%s", args, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("run %q error %q does not mention %s", args, err, w)
					}
				}
				if strings.HasPrefix(strings.TrimSpace(out), "ready") || strings.HasPrefix(strings.TrimSpace(out), "{") {
					t.Errorf("run %q printed %q before failing", args, out)
				}
			}
		})
	}

	// Control: the minimal directory used above is valid.
	file := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(file, []byte(`{"tenants": [`+tenant+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runQuick(t, "-config", file, "-print-config"); err != nil {
		t.Errorf("minimal directory rejected: %v", err)
	}

	if _, _, err := runQuick(t, "-config", filepath.Join(t.TempDir(), "missing.json"), "-print-config"); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing -config file: %v, want a not-exist error", err)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-print-config", "extra"},
		{"-no-such-flag"},
		{"-addr", "127.0.0.1"}, // no port
	} {
		if _, _, err := runQuick(t, args...); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}
