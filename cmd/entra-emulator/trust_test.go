package main

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTrust runs the printed recipes for real: each client refuses the
// emulator without its recipe and accepts it with it; the Chromium hash is
// that of the CA the emulator serves in its chain.
func TestTrust(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state dir's") // a path the shell must quote
	e := startEmulator(t, "-addr", "127.0.0.1:0", "-state-dir", state)
	out, _, err := runQuick(t, "trust", "--state-dir", state)
	if err != nil {
		t.Fatal(err)
	}
	line := func(prefix string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line starting %q in:\n%s", prefix, out)
		return ""
	}
	if !strings.Contains(line("sudo cp "), "update-ca-certificates") {
		t.Error("no system store recipe")
	}
	health := e.base + "/health"
	recipes := map[string]struct{ export, cmd string }{
		"go":     {line("export SSL_CERT_FILE=") + " && export GO_TRUST_URL=" + health, os.Args[0] + " -test.run=^TestGoTrustHelper$"},
		"python": {line("export SSL_CERT_FILE="), `python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1])' ` + health},
		"node":   {line("export NODE_EXTRA_CA_CERTS="), `node -e 'require("https").get(process.argv[1], r => process.exit(r.statusCode == 200 ? 0 : 3)).on("error", e => { console.error(e.message); process.exit(2) })' ` + health},
	}
	for name, r := range recipes {
		bin := strings.Fields(r.cmd)[0]
		if _, err := exec.LookPath(bin); err != nil && name != "go" {
			t.Logf("%s: not installed, recipe not run", name)
			continue
		}
		without := exec.Command("sh", "-c", "export GO_TRUST_URL="+health+"; "+r.cmd)
		without.Env = append(os.Environ(), "SSL_CERT_FILE=/dev/null", "NODE_EXTRA_CA_CERTS=")
		if b, err := without.CombinedOutput(); err == nil {
			t.Errorf("%s trusts the emulator without the recipe: %s", name, b)
		}
		with := exec.Command("sh", "-c", r.export+" && "+r.cmd)
		if b, err := with.CombinedOutput(); err != nil {
			t.Errorf("%s with %q: %v\n%s", name, r.export, err, b)
		}
	}

	// Chromium's hash is the SPKI hash of a certificate in the served chain.
	m := regexp.MustCompile(`--ignore-certificate-errors-spki-list=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no Chromium recipe in:\n%s", out)
	}
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := trusting(t, caPEM)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(health)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	found := false
	for _, c := range resp.TLS.PeerCertificates {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		found = found || base64.StdEncoding.EncodeToString(sum[:]) == m[1]
	}
	if !found {
		t.Errorf("SPKI hash %s is no certificate's the emulator serves", m[1])
	}

	if _, _, err := runQuick(t, "trust"); err == nil || !strings.Contains(err.Error(), "--state-dir") {
		t.Errorf("trust without a CA: %v", err)
	}
	if _, _, err := runQuick(t, "trust", "--ca", "/dev/null"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("trust --ca /dev/null: %v", err)
	}
}

// TestGoTrustHelper is the Go client of TestTrust, run in a child process
// whose environment carries the recipe (Go reads SSL_CERT_FILE once).
func TestGoTrustHelper(t *testing.T) {
	url := os.Getenv("GO_TRUST_URL")
	if url == "" {
		t.Skip("run by TestTrust")
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
}
