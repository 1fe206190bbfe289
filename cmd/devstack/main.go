// Command devstack runs the whole system locally.
//
//	devstack [run]   check the ports of docs/architecture.md (7070-7075, and 3000 for the SPA), rebuild
//	                 the SPA when web/ changed (with Node.js), build the three
//	                 handlers into .state/bin, start the Entra ID and Key Vault
//	                 emulators and the three apps, print the URLs, the test
//	                 users and a curl tour of every route, and run until
//	                 SIGINT or SIGTERM; a clean stop exits 0
//	devstack token   print an access token from the running devstack (see
//	                 token.go): `devstack token alice`, `devstack token --for
//	                 notification alice`, `devstack token --app operator --for audit`
//	devstack trace   print a trace the apps sent to the running devstack as a
//	                 tree (see trace.go): `devstack trace <trace id>`; without
//	                 an id, list the most recent traces
//	devstack demo    sign in as alice, show tokens A, B and C decoded side by
//	                 side, create a task through the Task API with a
//	                 traceparent of its own, and print that trace's tree
//
// `make run` builds this command into bin/devstack and execs it
// (scripts/run.sh), so signals reach it directly: Ctrl-C stops everything
// and make exits 0; `kill -TERM <make's pid>` has make pass SIGTERM on,
// devstack stops everything and exits 0, and make then ends by that same
// signal, as make always does (status 143, no error message). A process
// manager that wants exit 0 runs bin/devstack itself. While it runs, it
// describes itself in .state/devstack.json (its URLs, CA and process ids),
// which `devstack token` reads; a clean stop removes the file.
//
// devstack runs a trace receiver (internal/otlpsink) on 7075 and points the
// apps' OTEL_EXPORTER_OTLP_ENDPOINT at it, unless -no-traces, or unless
// OTEL_EXPORTER_OTLP_ENDPOINT is set in devstack's environment: then the
// apps get that (and the other OTEL_EXPORTER_OTLP_* variables) instead, and
// the banner says so.
//
// The demo uses the stack already running on the default ports (`make run`
// in another terminal) when the Entra emulator and the Task API answer
// there; when nothing answers, it builds and starts a stack of its own for
// the demo, with its logs in .state/demo.log, and stops it at the end. A
// stack that answers only in part is an error. `devstack demo -state DIR`
// uses the devstack running with that state directory instead.
//
// It runs from anywhere inside the repository; state (the emulator's CA
// and keys, the SQLite files, the binaries) lives in <repo>/.state. Every
// listener is on 127.0.0.1. Logs of the apps and emulators go to stderr,
// the summary to stdout. Every message of its own starts "devstack: ",
// once.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

const module = "github.com/handoff-dev/handoff"

// errUsage is a command line the flag package has already explained.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := "run", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runCommand(ctx, stop, args)
	case "token":
		err = tokenCommand(ctx, args, os.Stdout)
	case "demo":
		err = demo(ctx, args)
	case "trace":
		err = traceCommand(ctx, args, os.Stdout)
	default:
		usage()
	}
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

// fail prints err with one "devstack: " prefix (the library's errors carry
// it already) and exits 1.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "devstack:", strings.TrimPrefix(err.Error(), "devstack: "))
	os.Exit(1)
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: devstack [run] [-state DIR] [-free-ports] [-no-spa] [-no-traces]
                   start the whole system locally until Ctrl-C or SIGTERM
       devstack token [-state DIR] [--for task|notification] USER
       devstack token [-state DIR] --app operator|task --for audit
                   print an access token from the running devstack
       devstack trace [-state DIR] [-n N] [TRACE_ID]
                   print a trace of the running devstack as a tree, or list
                   the N most recent traces (default 20)
       devstack demo [-state DIR]
                   sign in as alice, create a task, show tokens A, B and C
                   and the create's trace`)
	os.Exit(2)
}

// paths are where the repository and its state are.
type paths struct{ root, state string }

func findPaths() (paths, error) {
	dir, err := os.Getwd()
	if err != nil {
		return paths{}, err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module "+module+"\n")) {
			return paths{root: dir, state: filepath.Join(dir, ".state")}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return paths{}, errors.New("run devstack inside the handoff repository (no go.mod of " + module + " above the current directory)")
		}
		dir = parent
	}
}

// start builds the handlers and starts a stack on ports, serving the SPA
// in spaDir unless it is "", with the apps exporting as telemetry says.
func start(ctx context.Context, p paths, out io.Writer, ports devstack.Ports, spaDir string, telemetry devstack.Telemetry) (*devstack.Stack, error) {
	bin := filepath.Join(p.state, "bin")
	what := "building the handlers into " + relative(bin)
	if _, err := os.Stat(bin); err != nil {
		what += " (the first build downloads and compiles the Go modules: a minute or two)"
	}
	err := withProgress(os.Stderr, progressEvery, what, func() error { return devstack.Build(ctx, p.root, bin) })
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "devstack: starting the emulators and the apps")
	return devstack.Start(ctx, devstack.Options{Root: p.root, StateDir: p.state, Ports: ports, Output: out, SPADir: spaDir, Telemetry: telemetry})
}

// progressEvery is how often a long step says it is still running.
const progressEvery = 10 * time.Second

// withProgress runs f, saying on w what it does first and every `every`
// until it returns, so a cold start is never silent for long.
func withProgress(w io.Writer, every time.Duration, what string, f func() error) error {
	fmt.Fprintln(w, "devstack:", what)
	done := make(chan struct{})
	var ticking sync.WaitGroup
	defer ticking.Wait() // no line after f returned
	defer close(done)
	began := time.Now()
	ticking.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "devstack: still %s (%s)\n", strings.SplitN(what, " (", 2)[0], time.Since(began).Round(time.Second))
			}
		}
	})
	return f()
}

func runCommand(ctx context.Context, stopSignals context.CancelFunc, args []string) error {
	fs := flag.NewFlagSet("devstack run", flag.ContinueOnError)
	state := fs.String("state", "", "the state directory (default <repo>/.state)")
	freePorts := fs.Bool("free-ports", false, "listen on free loopback ports, not 7070-7075 (tests)")
	noSPA := fs.Bool("no-spa", false, "neither build nor serve the SPA")
	noTraces := fs.Bool("no-traces", false, "run no trace receiver: the apps export no spans or metrics")
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package said why
	}
	if fs.NArg() > 0 {
		usage()
	}
	p, err := findPaths()
	if err != nil {
		return err
	}
	if *state != "" {
		if p.state, err = filepath.Abs(*state); err != nil {
			return err
		}
	}
	ports := devstack.DefaultPorts()
	if *freePorts {
		ports = devstack.Ports{}
	}
	webDir := filepath.Join(p.root, "web")
	wantSPA := !*noSPA && (hasNPM() || fileExists(filepath.Join(webDir, "dist", "index.html")))
	telemetry := telemetryFor(*noTraces)
	// Before any build: a second `make run` fails at once.
	if !*freePorts {
		if err := checkPorts(ports, wantSPA, telemetry.RunsReceiver()); err != nil {
			return err
		}
	}
	spa := ""
	if wantSPA {
		if spa, err = prepareSPA(ctx, webDir); err != nil {
			return stoppedEarly(ctx, err)
		}
	} else if !*noSPA {
		fmt.Fprintln(os.Stderr, "devstack: Node.js/npm is not installed, so the SPA (web/) is not built or served")
	}
	s, err := start(ctx, p, os.Stderr, ports, spa, telemetry)
	if err != nil {
		return stoppedEarly(ctx, err)
	}
	infoFile, err := writeRunInfo(p.state, s)
	if err != nil {
		return errors.Join(err, s.Close())
	}
	printSummary(os.Stdout, s, spa != "")
	<-ctx.Done()
	stopSignals() // a second Ctrl-C ends devstack at once
	fmt.Fprintln(os.Stderr, "devstack: stopping")
	os.Remove(infoFile)
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "devstack: stopped")
	return nil
}

// stoppedEarly is err, unless a signal asked devstack to stop while it
// built or started: then that is a clean stop (exit 0), not a failure.
func stoppedEarly(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "devstack: stopped before the stack had started")
	return nil
}

// telemetryFor is where the apps export: nowhere with -no-traces, else to
// the developer's OTEL_EXPORTER_OTLP_ENDPOINT when it is set, else to
// devstack's trace receiver.
func telemetryFor(noTraces bool) devstack.Telemetry {
	if noTraces {
		return devstack.Telemetry{Off: true}
	}
	return devstack.Telemetry{External: devstack.ExternalOTLP(os.Environ())}
}

// checkPorts fails, in one line, when a port of the stack (or the SPA's,
// or the trace receiver's) is taken.
func checkPorts(ports devstack.Ports, spa, traces bool) error {
	check := []struct {
		what string
		port int
	}{
		{"the Entra ID emulator", ports.Entra}, {"the Task API", ports.Task}, {"the Notification Service", ports.Notification},
		{"the Audit Service", ports.Audit}, {"the Key Vault emulator", ports.KeyVault},
	}
	if spa {
		check = append(check, struct {
			what string
			port int
		}{"the SPA", devstack.SPAPort})
	}
	if traces {
		check = append(check, struct {
			what string
			port int
		}{"the trace receiver", ports.Traces})
	}
	for _, c := range check {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.port))
		if err != nil {
			return fmt.Errorf("127.0.0.1:%d (%s) is in use: is another devstack (make run) running? Stop it or free the port", c.port, c.what)
		}
		l.Close()
	}
	return nil
}

// prepareSPA rebuilds web/dist when web/ changed since its last build and
// returns it.
func prepareSPA(ctx context.Context, webDir string) (string, error) {
	dist := filepath.Join(webDir, "dist")
	if !hasNPM() {
		fmt.Fprintln(os.Stderr, "devstack: Node.js/npm is not installed: serving web/dist as it was last built")
		return dist, nil
	}
	needed, _, err := devstack.SPABuildNeeded(webDir)
	if err != nil || !needed {
		return dist, err
	}
	err = withProgress(os.Stderr, progressEvery, "rebuilding the SPA (web/ changed since its last build)", func() error {
		_, err := devstack.BuildSPA(ctx, webDir, func(step string) { fmt.Fprintln(os.Stderr, "devstack:", step) })
		return err
	})
	return dist, err
}

func hasNPM() bool {
	_, errNode := exec.LookPath("node")
	_, errNPM := exec.LookPath("npm")
	return errNode == nil && errNPM == nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func printSummary(w io.Writer, s *devstack.Stack, spa bool) {
	ca := relative(s.CAFile())
	entraURL := s.Entra.BaseURL()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nhandoff is running. Ctrl-C stops everything.")
	fmt.Fprintln(w)
	fmt.Fprintf(tw, "  Entra ID emulator\t%s\t(authority %s/<tenant id>)\n", entraURL, entraURL)
	fmt.Fprintf(tw, "  Key Vault emulator\t%s\t(secret %s)\n", s.Vault.BaseURL(), devstack.KeyVaultSecretName)
	fmt.Fprintf(tw, "  Task API\t%s/api\t(/tasks, /tasks/{id}, /me, /outbox; timer /sweep)\n", s.URL(devstack.AppTask))
	fmt.Fprintf(tw, "  Notification Service\t%s/api\t(/notify, /notifications)\n", s.URL(devstack.AppNotification))
	fmt.Fprintf(tw, "  Audit Service\t%s/api\t(/audit)\n", s.URL(devstack.AppAudit))
	fmt.Fprintf(tw, "  CA certificate\t%s\t(curl --cacert, NODE_EXTRA_CA_CERTS; see the README to trust it in a browser)\n", ca)
	fmt.Fprintf(tw, "  Data\t%s\n", relative(filepath.Join(s.StateDir(), "data")))
	fmt.Fprintln(tw, tracesLine(s.TracesURL(), s.OTLPEndpoint()))
	if spki, err := devstack.SPKIHash(s.CAFile()); err == nil {
		fmt.Fprintf(tw, "  CA SPKI hash\t%s\t(chromium --ignore-certificate-errors-spki-list=%s)\n", spki, spki)
	}
	tw.Flush()
	if spa {
		fmt.Fprintf(w, "\n  SPA  %s  (web/dist; sign in as a test user below)\n", devstack.SPAOrigin)
	} else {
		fmt.Fprintf(w, "\n  SPA  not served: build it with `make web` (Node.js) and restart\n")
	}

	allowed := strings.Split(s.Settings(devstack.AppTask)["ALLOWED_TENANT_IDS"], ",")
	fmt.Fprintf(w, "\nTest users (password %s):\n\n", entra.DefaultUserPassword)
	fmt.Fprintln(tw, "  TENANT\tNAME\tUSERNAME\tROLES ON THE TASK API")
	for _, t := range s.Entra.Directory().Tenants {
		tenant := fmt.Sprintf("%s (%s)", t.DisplayName, t.ID)
		if !slices.Contains(allowed, t.ID) {
			tenant += ", on no allow-list"
		}
		for i, u := range t.Users {
			if i > 0 {
				tenant = ""
			}
			var roles []string
			for _, a := range t.AppRoleAssignments {
				if a.PrincipalType == entra.PrincipalUser && a.PrincipalID == u.ObjectID && a.ResourceAppID == entra.TaskAPIClientID {
					roles = append(roles, a.Role)
				}
			}
			role := strings.Join(roles, ", ")
			if role == "" {
				role = "none"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", tenant, u.Name, u.PreferredUsername, role)
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nThe five-minute tour (paste into a shell in the repository's root; make demo shows tokens A, B and C):")
	fmt.Fprintln(w)
	for _, line := range strings.Split(strings.TrimRight(tour(tourURLs{
		Entra: entraURL, Task: s.URL(devstack.AppTask), Notification: s.URL(devstack.AppNotification),
		Audit: s.URL(devstack.AppAudit), CAFile: ca,
	}), "\n"), "\n") {
		if line != "" {
			line = "  " + line
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

// relative shortens path to one relative to the working directory when
// it lies below it.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// answers reports whether something answers HTTP at base (any status):
// nil if it does, an error wrapping ECONNREFUSED if nothing listens.
func answers(ctx context.Context, base string, client *http.Client) error {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"), 3*time.Second)
	if err != nil {
		return err
	}
	c.Close()
	if client == nil {
		return errors.New("no client to call it with")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func orOK(err error) string {
	if err == nil {
		return "answers"
	}
	return err.Error()
}

// httpClient trusts the emulators' CA alone.
func httpClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("the emulators' CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// decode returns a JWT's claims, unverified: for display only.
func decode(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// claim formats a claim for display; "azp/appid" is azp (v2 tokens) or
// appid (v1).
func claim(claims map[string]any, k string) string {
	if k == "azp/appid" {
		k = "azp"
		if _, ok := claims[k]; !ok {
			k = "appid"
		}
	}
	switch v := claims[k].(type) {
	case nil:
		return "-"
	case string:
		return v
	case []any:
		var s []string
		for _, x := range v {
			s = append(s, fmt.Sprint(x))
		}
		return strings.Join(s, ",")
	default:
		return fmt.Sprint(v)
	}
}
