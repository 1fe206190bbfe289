// Package e2e runs the whole system as devstack does: the three real
// binaries behind the host simulator, the Entra and Key Vault emulators,
// real ports, real tokens from MSAL.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handoff-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err = devstack.Build(ctx, repoRoot(), binDir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// stack starts the whole system on free ports for one test.
func stack(t *testing.T, appEnv map[string]map[string]string) *devstack.Stack {
	t.Helper()
	return start(t, devstack.Options{AppEnv: appEnv})
}

// stackWith starts the system with another Entra directory.
func stackWith(t *testing.T, dir *entra.Directory) *devstack.Stack {
	t.Helper()
	return start(t, devstack.Options{EntraDirectory: dir})
}

func start(t *testing.T, o devstack.Options) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o.Root, o.StateDir, o.BinDir, o.Output = repoRoot(), t.TempDir(), binDir, testWriter{t}
	s, err := devstack.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() {
		// The client's spare connections, some never used (the transport
		// dials one for a request that then gets an idle one), would hold
		// the hosts' shutdown for net/http's 5 s.
		http.DefaultClient.CloseIdleConnections()
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		cancel()
	})
	return s
}

// testWriter sends the apps' logs to the test log, shown on failure.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var taskScope = "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser

// signIn returns token A for a user (password grant, dev client).
func signIn(t *testing.T, s *devstack.Stack, tenant, username string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(s.Entra.Authority(tenant)),
		public.WithHTTPClient(s.Entra.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), []string{taskScope}, username, entra.DefaultUserPassword)
	if err != nil {
		t.Fatalf("sign in %s: %v", username, err)
	}
	return res.AccessToken
}

// asApp acts as an app with a secret (the Task API, the operator) to get
// the tokens the tests need to read what the services recorded.
func asApp(t *testing.T, s *devstack.Stack, clientID, secret string) confidential.Client {
	t.Helper()
	cred, _ := confidential.NewCredFromSecret(secret)
	c, err := confidential.New(s.Entra.Authority(entra.HomeTenantID), clientID, cred,
		confidential.WithHTTPClient(s.Entra.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func call(t *testing.T, method, url, token string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	var c map[string]any
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatal("bad token")
	}
	return c
}

func str(v any) string { s, _ := v.(string); return s }

func items(r response) []map[string]any {
	var out []map[string]any
	list, _ := r.body["items"].([]any)
	for _, it := range list {
		out = append(out, it.(map[string]any))
	}
	return out
}
