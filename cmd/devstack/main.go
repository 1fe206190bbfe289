// Command devstack runs the whole system locally.
//
//	devstack [run]   check the ports of docs/architecture.md (7070-7074, and 3000 for the SPA), rebuild
//	                 the SPA when web/ changed (with Node.js), build the three
//	                 handlers into .state/bin, start the Entra ID and Key Vault
//	                 emulators and the three apps, print the URLs, the test
//	                 users and a curl tour of every route, and run until
//	                 SIGINT or SIGTERM; a clean stop exits 0
//	devstack token   print an access token from the running devstack (see
//	                 token.go): `devstack token alice`, `devstack token --for
//	                 notification alice`, `devstack token --app operator --for audit`
//	devstack demo    sign in as alice, show tokens A, B and C decoded side by
//	                 side, and create a task through the Task API
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
// The demo uses the stack already running on the default ports (`make run`
// in another terminal) when the Entra emulator and the Task API answer
// there; when nothing answers, it builds and starts a stack of its own for
// the demo, with its logs in .state/demo.log, and stops it at the end. A
// stack that answers only in part is an error.
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

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

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
		if len(args) > 0 {
			usage()
		}
		err = demo(ctx)
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
	fmt.Fprintln(os.Stderr, `usage: devstack [run] [-state DIR] [-free-ports] [-no-spa]
                   start the whole system locally until Ctrl-C or SIGTERM
       devstack token [-state DIR] [--for task|notification] USER
       devstack token [-state DIR] --app operator|task --for audit
                   print an access token from the running devstack
       devstack demo    sign in as alice, create a task, show tokens A, B and C`)
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
// in spaDir unless it is "".
func start(ctx context.Context, p paths, out io.Writer, ports devstack.Ports, spaDir string) (*devstack.Stack, error) {
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
	return devstack.Start(ctx, devstack.Options{Root: p.root, StateDir: p.state, Ports: ports, Output: out, SPADir: spaDir})
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
	freePorts := fs.Bool("free-ports", false, "listen on free loopback ports, not 7070-7074 (tests)")
	noSPA := fs.Bool("no-spa", false, "neither build nor serve the SPA")
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
	// Before any build: a second `make run` fails at once.
	if !*freePorts {
		if err := checkPorts(ports, wantSPA); err != nil {
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
	s, err := start(ctx, p, os.Stderr, ports, spa)
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

// checkPorts fails, in one line, when a port of the stack (or the SPA's)
// is taken.
func checkPorts(ports devstack.Ports, spa bool) error {
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

// demo shows the token journey: A (user → Task API), B (OBO → Notification)
// and C (client credentials → Audit), and a create through the Task API.
func demo(ctx context.Context) error {
	p, err := findPaths()
	if err != nil {
		return err
	}
	ports := devstack.DefaultPorts()
	entraURL := fmt.Sprintf("https://127.0.0.1:%d", ports.Entra)
	taskURL := fmt.Sprintf("http://127.0.0.1:%d", ports.Task)
	caFile := filepath.Join(p.state, "entra", "ca.pem")

	// Before a first run there is no CA yet: then only a refused port tells.
	entraClient, caErr := httpClient(caFile)
	entraUp := answers(ctx, entraURL, entraClient)
	if entraUp != nil && !isRefused(entraUp) && caErr != nil {
		entraUp = caErr
	}
	taskUp := answers(ctx, taskURL, http.DefaultClient)
	switch {
	case entraUp == nil && taskUp == nil:
		fmt.Fprintln(os.Stderr, "devstack: using the stack running on the default ports")
	case isRefused(entraUp) && isRefused(taskUp):
		logPath := filepath.Join(p.state, "demo.log")
		if err := os.MkdirAll(p.state, 0o755); err != nil {
			return err
		}
		logFile, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logFile.Close()
		fmt.Fprintf(os.Stderr, "devstack: no stack answers on the default ports; starting one for the demo (logs in %s)\n", relative(logPath))
		s, err := start(ctx, p, logFile, devstack.DefaultPorts(), "")
		if err != nil {
			return fmt.Errorf("%w (logs in %s)", err, relative(logPath))
		}
		defer func() {
			if err := s.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "devstack: stop:", err)
			}
		}()
	default:
		return fmt.Errorf("the stack on the default ports answers only in part (Entra emulator: %v; Task API: %v); restart `make run`", orOK(entraUp), orOK(taskUp))
	}

	hc, err := httpClient(caFile) // the stack may have just written it
	if err != nil {
		return err
	}
	taskScope := "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	user := "alice@home.handoff.test"

	// A: alice signs in to the Task API with the dev client.
	pc, err := public.New(entra.DevClientID, public.WithAuthority(entraURL+"/"+entra.HomeTenantID),
		public.WithHTTPClient(hc), public.WithInstanceDiscovery(false))
	if err != nil {
		return err
	}
	//lint:ignore SA1019 the password grant is deprecated; the demo signs a test user in without a browser.
	a, err := pc.AcquireTokenByUsernamePassword(ctx, []string{taskScope}, user, entra.DefaultUserPassword)
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", user, err)
	}
	claimsA, err := decode(a.AccessToken)
	if err != nil {
		return err
	}

	// B and C: the exchanges the Task API makes on a create, repeated here
	// with its dev secret to show what it gets.
	cred, err := confidential.NewCredFromSecret(entra.TaskAPISecret)
	if err != nil {
		return err
	}
	tid, _ := claimsA["tid"].(string)
	userTenant, err := confidential.New(entraURL+"/"+tid, entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(hc), confidential.WithInstanceDiscovery(false))
	if err != nil {
		return err
	}
	b, err := userTenant.AcquireTokenOnBehalfOf(ctx, a.AccessToken, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		return fmt.Errorf("On-Behalf-Of: %w", err)
	}
	home, err := confidential.New(entraURL+"/"+entra.HomeTenantID, entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(hc), confidential.WithInstanceDiscovery(false))
	if err != nil {
		return err
	}
	c, err := home.AcquireTokenByCredential(ctx, []string{entra.AuditClientID + "/.default"})
	if err != nil {
		return fmt.Errorf("client credentials: %w", err)
	}
	claimsB, err := decode(b.AccessToken)
	if err != nil {
		return err
	}
	claimsC, err := decode(c.AccessToken)
	if err != nil {
		return err
	}

	created, err := createTask(ctx, hc, taskURL, a.AccessToken)
	if err != nil {
		return err
	}

	w := os.Stdout
	fmt.Fprintf(w, "\nSigned in as %s: token A, for the Task API. On a create the Task API exchanges it\n", user)
	fmt.Fprintln(w, "On-Behalf-Of alice for token B (Notification Service, at her tenant) and gets token C as")
	fmt.Fprintln(w, "itself with client credentials (Audit Service, home tenant); B and C below are the same")
	fmt.Fprintln(w, "exchanges, made here with the Task API's dev secret:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "claim\tA: user → Task API\tB: OBO → Notification\tC: app → Audit")
	for _, k := range []string{"aud", "scp", "roles", "oid", "name", "tid", "azp/appid", "idtyp"} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k, claim(claimsA, k), claim(claimsB, k), claim(claimsC, k))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nPOST %s/api/tasks with token A → %d\n", taskURL, created.status)
	fmt.Fprintf(tw, "  id\t%v\n  title\t%v\n  notification_status\t%v\n  audit_status\t%v\n",
		created.body["id"], created.body["title"], created.body["notification_status"], created.body["audit_status"])
	tw.Flush()
	for _, k := range []string{"notification_failure", "audit_failure"} {
		if v, ok := created.body[k]; ok {
			j, _ := json.Marshal(v)
			fmt.Fprintf(w, "  %s: %s\n", k, j)
		}
	}
	if created.status != http.StatusCreated {
		return fmt.Errorf("the create answered %d: %s", created.status, created.raw)
	}
	return nil
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

type response struct {
	status int
	raw    []byte
	body   map[string]any
}

func createTask(ctx context.Context, hc *http.Client, taskURL, token string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, taskURL+"/api/tasks",
		strings.NewReader(`{"title":"hello from devstack demo","description":"tokens A, B and C"}`))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("create a task: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
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
