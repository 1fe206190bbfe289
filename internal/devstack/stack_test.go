//go:build unix

package devstack_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

// startStack starts a stack on free ports with a fresh state directory;
// it is closed (and checked to leave nothing running) when the test ends.
func startStack(t *testing.T, o devstack.Options) *devstack.Stack {
	t.Helper()
	o.Root, o.BinDir, o.Output = repoRoot(), binDir, testWriter{t}
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if left := leftovers(binDir); len(left) > 0 {
			t.Errorf("handlers still running after Close: %v", left)
		}
	})
	return s
}

func TestStack(t *testing.T) {
	// The developer's shell must not leak into the apps.
	t.Setenv("AZURE_CLIENT_SECRET", "leaked")
	t.Setenv("AZURE_TENANT_ID", "leaked")
	t.Setenv("IDENTITY_ENDPOINT", "https://leaked.invalid/msi")
	// Only the command reads the developer's OTLP endpoint (ExternalOTLP).
	t.Setenv(devstack.EnvOTLPEndpoint, "https://leaked.invalid/otlp")
	state := t.TempDir()
	s := startStack(t, devstack.Options{StateDir: state})

	t.Run("apps answer through the host", func(t *testing.T) {
		r := do(t, "GET", s.URL(devstack.AppTask)+"/api/me", nil)
		wantProblem(t, r, http.StatusUnauthorized)
		if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge: %v", r.header)
		}
		wantProblem(t, do(t, "POST", s.URL(devstack.AppNotification)+"/api/notify", nil), http.StatusUnauthorized)
		wantProblem(t, do(t, "GET", s.URL(devstack.AppAudit)+"/api/audit", nil), http.StatusUnauthorized)
		// What the host does not route it answers with an empty 404, a
		// declared path with an undeclared method included.
		for _, c := range [][2]string{{"GET", "/api/nope"}, {"DELETE", "/api/tasks"}, {"PUT", "/api/tasks/abc"}} {
			if r := do(t, c[0], s.URL(devstack.AppTask)+c[1], nil); r.status != http.StatusNotFound || len(r.raw) != 0 {
				t.Errorf("%s %s: %d %s, want an empty 404", c[0], c[1], r.status, r.raw)
			}
		}
	})

	t.Run("CORS preflight answered by the handler", func(t *testing.T) {
		r := do(t, "OPTIONS", s.URL(devstack.AppTask)+"/api/tasks", nil,
			"Origin", devstack.SPAOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization")
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != devstack.SPAOrigin {
			t.Errorf("preflight: %d %v", r.status, r.header)
		}
	})

	t.Run("emulators reachable with the CA file", func(t *testing.T) {
		if s.CAFile() != filepath.Join(state, "entra", "ca.pem") {
			t.Errorf("CA file %s", s.CAFile())
		}
		pem, err := os.ReadFile(s.CAFile())
		if err != nil || !bytes.Equal(pem, s.Entra.CAPEM()) {
			t.Fatalf("ca.pem: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := c.Get(s.Entra.BaseURL() + "/" + entra.HomeTenantID + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("discovery: %d", resp.StatusCode)
		}
		resp, err = c.Get(s.Vault.BaseURL() + "/secrets/" + devstack.KeyVaultSecretName + "?api-version=7.5")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource="https://vault.azure.net"`) {
			t.Errorf("vault without a token: %d %v", resp.StatusCode, resp.Header)
		}
		if v, _, ok := s.Vault.Secret(devstack.KeyVaultSecretName); !ok || v != entra.TaskAPISecret {
			t.Error("the vault does not hold the Task API's secret")
		}
	})

	t.Run("apps get their settings and nothing else", func(t *testing.T) {
		env := s.Settings(devstack.AppTask)
		if env["NOTIFICATION_URL"] != s.URL(devstack.AppNotification) || env["AUDIT_URL"] != s.URL(devstack.AppAudit) ||
			env["AZURE_KEYVAULT_URL"] != s.Vault.BaseURL() || env["AZURE_AUTHORITY_HOST"] != s.Entra.BaseURL() ||
			env["DATA_DIR"] != filepath.Join(state, "data", "task") {
			t.Errorf("task settings: %v", env)
		}
		for _, app := range devstack.Apps() {
			raw, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID(app)) + "/environ")
			if err != nil {
				t.Skipf("cannot read a process's environment here: %v", err)
			}
			vars := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
			for _, leaked := range []string{"AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"} {
				if envHas(vars, leaked) {
					t.Errorf("%s inherited %s", app, leaked)
				}
			}
			if envHas(vars, "IDENTITY_ENDPOINT") != (app == devstack.AppTask) || !envHas(vars, "FUNCTIONS_CUSTOMHANDLER_PORT") {
				t.Errorf("%s environment: %v", app, vars)
			}
			// The host's own five: FUNCTIONS_CUSTOMHANDLER_PORT and _WORKER_ID,
			// FUNCTIONS_HTTPWORKER_PORT and _ID, FUNCTIONS_APP_ROOT_PATH.
			if len(vars) != len(s.Settings(app))+5+countSet("PATH", "HOME", "TMPDIR") {
				t.Errorf("%s has %d variables, want its %d settings, the host's 5 and PATH/HOME/TMPDIR: %v", app, len(vars), len(s.Settings(app)), vars)
			}
		}
	})

	t.Run("apps export to devstack's trace receiver", func(t *testing.T) {
		if s.TracesURL() == "" || s.Traces() == nil || s.OTLPEndpoint() != s.TracesURL() {
			t.Fatalf("TracesURL %q, OTLPEndpoint %q: want the receiver's", s.TracesURL(), s.OTLPEndpoint())
		}
		for _, app := range devstack.Apps() {
			env := s.Settings(app)
			if env[devstack.EnvOTLPEndpoint] != s.TracesURL() || env["OTEL_EXPORTER_OTLP_PROTOCOL"] != "http/protobuf" ||
				env["OTEL_BSP_SCHEDULE_DELAY"] != devstack.BatchDelayMillis {
				t.Errorf("%s's OTEL settings: %v", app, env)
			}
		}
		traceID := exportSpan(t, s.TracesURL())
		r := do(t, "GET", s.TracesURL()+"/traces/"+traceID, nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.raw), `"service":"devstack-test"`) {
			t.Errorf("GET /traces/%s: %d %s", traceID, r.status, r.raw)
		}
	})

	t.Run("a create goes through Key Vault, OBO and client credentials", func(t *testing.T) {
		token := signIn(t, s, "alice@home.handoff.test")
		r := do(t, "POST", s.URL(devstack.AppTask)+"/api/tasks", strings.NewReader(`{"title":"hello"}`),
			"Authorization", "Bearer "+token, "Content-Type", "application/json")
		if r.status != http.StatusCreated || r.body["notification_status"] != "sent" || r.body["audit_status"] != "logged" {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
	})

	t.Run("the Task API's sweep is a timer function", func(t *testing.T) {
		if env := s.Settings(devstack.AppTask); env["AUDIT_SWEEP_SCHEDULE"] != devstack.DefaultAuditSweepSchedule {
			t.Errorf("AUDIT_SWEEP_SCHEDULE = %q", env["AUDIT_SWEEP_SCHEDULE"])
		}
		logs, err := s.Invoke(context.Background(), devstack.AppTask, "sweep")
		if err != nil || len(logs) == 0 {
			t.Fatalf("Invoke sweep: %q, %v", logs, err)
		}
		// Not reachable over HTTP, as under the real host.
		for _, path := range []string{"/sweep", "/api/sweep"} {
			if r := do(t, "POST", s.URL(devstack.AppTask)+path, strings.NewReader(`{"Data":{"timer":{}}}`)); r.status != http.StatusNotFound || len(r.raw) != 0 {
				t.Errorf("POST %s: %d %s, want an empty 404", path, r.status, r.raw)
			}
		}
		if _, err := s.Invoke(context.Background(), devstack.AppAudit, "sweep"); err == nil {
			t.Error("the Audit Service has a sweep")
		}
		if _, err := s.Invoke(context.Background(), "nope", "sweep"); err == nil {
			t.Error("an unknown app was accepted")
		}
	})

	t.Run("a stopped app answers 502, then comes back", func(t *testing.T) {
		base := s.URL(devstack.AppNotification)
		pid := s.PID(devstack.AppNotification)
		if err := s.StopApp(devstack.AppNotification); err != nil {
			t.Fatal(err)
		}
		if !processGone(pid) || s.PID(devstack.AppNotification) != 0 {
			t.Fatalf("pid %d still running", pid)
		}
		wantProblem(t, do(t, "POST", base+"/api/notify", nil), http.StatusBadGateway)
		if err := s.StartApp(context.Background(), devstack.AppNotification); err != nil {
			t.Fatal(err)
		}
		if s.URL(devstack.AppNotification) != base {
			t.Error("the address changed")
		}
		wantProblem(t, do(t, "POST", base+"/api/notify", nil), http.StatusUnauthorized)
	})

	t.Run("a crashed handler is restarted by the host", func(t *testing.T) {
		base := s.URL(devstack.AppNotification)
		pid := s.PID(devstack.AppNotification)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for p := s.PID(devstack.AppNotification); p == 0 || p == pid; p = s.PID(devstack.AppNotification) {
			if time.Now().After(deadline) {
				t.Fatal("not restarted")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Requests wait for the restarted handler: no 502.
		wantProblem(t, do(t, "POST", base+"/api/notify", nil), http.StatusUnauthorized)
	})

	t.Run("a killed app answers 502, then comes back", func(t *testing.T) {
		base := s.URL(devstack.AppAudit)
		pid := s.PID(devstack.AppAudit)
		if err := s.KillApp(devstack.AppAudit); err != nil {
			t.Fatal(err)
		}
		if !processGone(pid) {
			t.Fatalf("pid %d still running", pid)
		}
		wantProblem(t, do(t, "GET", base+"/api/audit", nil), http.StatusBadGateway)
		if err := s.StartApp(context.Background(), devstack.AppAudit); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, do(t, "GET", base+"/api/audit", nil), http.StatusUnauthorized)
	})

	t.Run("unknown app", func(t *testing.T) {
		if s.StopApp("nope") == nil || s.KillApp("nope") == nil || s.StartApp(context.Background(), "nope") == nil || s.URL("nope") != "" {
			t.Error("an unknown app was accepted")
		}
	})

	t.Run("close stops everything", func(t *testing.T) {
		pids := map[string]int{}
		urls := []string{s.Entra.BaseURL(), s.Vault.BaseURL()}
		for _, app := range devstack.Apps() {
			pids[app] = s.PID(app)
			urls = append(urls, s.URL(app))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for app, pid := range pids {
			if pid == 0 || !processGone(pid) {
				t.Errorf("%s (pid %d) is still running", app, pid)
			}
		}
		for _, u := range urls {
			if !refused(u) {
				t.Errorf("%s still answers", u)
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func countSet(keys ...string) int {
	n := 0
	for _, k := range keys {
		if _, ok := os.LookupEnv(k); ok {
			n++
		}
	}
	return n
}

func signIn(t *testing.T, s *devstack.Stack, username string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(s.Entra.Authority(entra.HomeTenantID)),
		public.WithHTTPClient(s.Entra.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	scope := "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	//lint:ignore SA1019 the password grant is deprecated; tests sign test users in without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), []string{scope}, username, entra.DefaultUserPassword)
	if err != nil {
		t.Fatalf("sign in %s: %v", username, err)
	}
	return res.AccessToken
}

func TestStartFailures(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = devstack.Start(context.Background(), devstack.Options{
			Root: repoRoot(), StateDir: t.TempDir(), BinDir: binDir, Output: testWriter{t},
			Ports: devstack.Ports{Audit: l.Addr().(*net.TCPAddr).Port},
		})
		if err == nil || !strings.Contains(err.Error(), "is in use") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("not built", func(t *testing.T) {
		_, err := devstack.Start(context.Background(), devstack.Options{Root: repoRoot(), StateDir: t.TempDir(), BinDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "not built") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("unknown app in AppEnv", func(t *testing.T) {
		_, err := devstack.Start(context.Background(), devstack.Options{Root: repoRoot(), StateDir: t.TempDir(), BinDir: binDir,
			AppEnv: map[string]map[string]string{"nope": {"A": "b"}}})
		if err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("an unset schedule setting", func(t *testing.T) {
		ports := freePorts(t, 6)
		_, err := devstack.Start(context.Background(), devstack.Options{
			Root: repoRoot(), StateDir: t.TempDir(), BinDir: binDir, Output: testWriter{t},
			Ports:  devstack.Ports{Entra: ports[0], Task: ports[1], Notification: ports[2], Audit: ports[3], KeyVault: ports[4], Traces: ports[5]},
			AppEnv: map[string]map[string]string{devstack.AppTask: {"AUDIT_SWEEP_SCHEDULE": ""}},
		})
		if err == nil || !strings.Contains(err.Error(), "names the app setting AUDIT_SWEEP_SCHEDULE, which is not set") {
			t.Fatalf("Start: %v", err)
		}
		for _, p := range ports {
			if !refused("127.0.0.1:" + strconv.Itoa(p)) {
				t.Errorf("port %d still served", p)
			}
		}
	})
	t.Run("an app that cannot start stops the rest", func(t *testing.T) {
		ports := freePorts(t, 5)
		out := &captureWriter{t: t}
		_, err := devstack.Start(context.Background(), devstack.Options{
			Root: repoRoot(), StateDir: t.TempDir(), BinDir: binDir, Output: out,
			Ports:  devstack.Ports{Entra: ports[0], Task: ports[1], Notification: ports[2], Audit: ports[3], KeyVault: ports[4]},
			AppEnv: map[string]map[string]string{devstack.AppTask: {"AZURE_API_CLIENT_ID": "not-a-guid"}},
		})
		if err == nil || !strings.Contains(err.Error(), "task") || !strings.Contains(err.Error(), "exited before it was ready (exit status 1)") {
			t.Fatalf("Start: %v", err)
		}
		// The fatal configuration error is one Error record on stderr,
		// which the host logs at Error.
		if !regexp.MustCompile(`(?m)^\[task error\] \{.*"level":"ERROR".*AZURE_API_CLIENT_ID`).MatchString(out.String()) {
			t.Errorf("no Error record on the task handler's stderr:\n%s", out)
		}
		for _, p := range ports {
			if !refused("127.0.0.1:" + strconv.Itoa(p)) {
				t.Errorf("port %d still served", p)
			}
		}
		if left := leftovers(binDir); len(left) > 0 {
			t.Errorf("handlers left running: %v", left)
		}
	})
}

// captureWriter keeps what it is given, and shows it in the test log.
type captureWriter struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (w *captureWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (w *captureWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestTaskSweepRunsPastDue: a sweep occurrence missed while the stack was
// down (its record in StateDir/host/task says so) runs at once on start,
// IsPastDue true, and the Task API's sweep handles it as any run.
func TestTaskSweepRunsPastDue(t *testing.T) {
	state := t.TempDir()
	last := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	rec := fmt.Sprintf(`{"last":%q,"next":%q,"lastUpdated":%q}`, last.Format(time.RFC3339), last.Add(time.Minute).Format(time.RFC3339), last.Format(time.RFC3339))
	if err := os.MkdirAll(filepath.Join(state, "host", "task", "timers"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "host", "task", "timers", "sweep.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &captureWriter{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, devstack.Options{Root: repoRoot(), BinDir: binDir, StateDir: state, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "[task host] sweep: succeeded") {
		if time.Now().After(deadline) {
			t.Fatal("the past-due sweep did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := out.String()
	if !strings.Contains(o, "[task host] sweep: executing (past due, due "+last.Add(time.Minute).Format(time.RFC3339)+")") ||
		!strings.Contains(o, "past due: true)") {
		t.Errorf("the sweep did not run as past due")
	}
}
