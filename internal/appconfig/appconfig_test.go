package appconfig_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/appconfig"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestValuesAndErrors(t *testing.T) {
	e := appconfig.New(env(map[string]string{
		"G": "10000000-0000-4000-8000-000000000001", "BADG": "nope", "L": " a, ,b ", "B": "true", "BADB": "maybe",
		"I": "5", "BADI": "500", "D": "2s", "BADD": "2 hours", "U": "http://x/", "BADU": "ftp://x",
		"ALLOWED_TENANT_IDS": "20000000-0000-4000-8000-000000000002",
	}))
	if e.GUID("G") != "10000000-0000-4000-8000-000000000001" || strings.Join(e.List("L"), "|") != "a|b" ||
		!e.Bool("B", false) || e.Int("I", 1, 1, 10) != 5 || e.Duration("D", time.Second, time.Millisecond, time.Minute) != 2*time.Second ||
		e.URL("U") != "http://x" || e.Int("UNSET", 7, 1, 10) != 7 {
		t.Error("a valid value was misread")
	}
	if e.Err() != nil {
		t.Fatalf("valid values: %v", e.Err())
	}
	ids, any := e.Tenants("10000000-0000-4000-8000-000000000001")
	if any || len(ids) != 2 {
		t.Errorf("tenants %v any %v: the home tenant is always allowed", ids, any)
	}
	e.GUID("BADG")
	e.Bool("BADB", false)
	e.Int("BADI", 1, 1, 10)
	e.Duration("BADD", time.Second, time.Millisecond, time.Minute)
	e.URL("BADU")
	e.Required("MISSING")
	err := e.Err()
	for _, name := range []string{"BADG", "BADB", "BADI", "BADD", "BADU", "MISSING"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("no error names %s: %v", name, err)
		}
	}
}

func TestExtraCA(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := appconfig.New(env(map[string]string{appconfig.EnvExtraCA: bad}))
	e.HTTPClient(time.Second)
	if e.Err() == nil || !strings.Contains(e.Err().Error(), appconfig.EnvExtraCA) {
		t.Errorf("an unreadable CA file was accepted: %v", e.Err())
	}
}

// TestHTTPClientSpeaksHTTP1: the outbound client trusts EXTRA_CA_FILE and
// speaks HTTP/1.1 to a TLS server that offers HTTP/2 (measured faster for
// the few calls the apps make: appconfig.go).
func TestHTTPClientSpeaksHTTP1(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	der := srv.Certificate().Raw
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	e := appconfig.New(env(map[string]string{appconfig.EnvExtraCA: ca}))
	hc := e.HTTPClient(5 * time.Second)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	// The server does speak HTTP/2 to a client that asks for it.
	if resp, err := srv.Client().Get(srv.URL); err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("the test server does not offer HTTP/2: %v", err)
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Errorf("the outbound client spoke %s, want HTTP/1.1", resp.Proto)
	}
}
