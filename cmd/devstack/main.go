// Command devstack runs the whole system locally.
//
//	devstack [run]   build the three handlers into .state/bin, start the Entra ID
//	                 and Key Vault emulators and the three apps on the ports of
//	                 docs/architecture.md (7070-7074), print the URLs, the test users and a
//	                 curl recipe, and run until Ctrl-C (SIGINT or SIGTERM)
//	devstack demo    sign in as alice, show tokens A, B and C decoded side by
//	                 side, and create a task through the Task API
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
// the summary to stdout.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

const module = "github.com/handoff-dev/handoff"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	if len(os.Args) > 2 {
		usage()
	}
	var err error
	switch cmd {
	case "run":
		err = run(ctx, stop)
	case "demo":
		err = demo(ctx)
	case "help", "-h", "-help", "--help":
		usage()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: devstack [run]   start the whole system locally until Ctrl-C
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

// start builds the handlers and starts a stack on the default ports.
func start(ctx context.Context, p paths, out io.Writer, serveSPA bool) (*devstack.Stack, error) {
	fmt.Fprintln(os.Stderr, "devstack: building the handlers into", filepath.Join(p.state, "bin"))
	if err := devstack.Build(ctx, p.root, filepath.Join(p.state, "bin")); err != nil {
		return nil, err
	}
	return devstack.Start(ctx, devstack.Options{Root: p.root, StateDir: p.state, Ports: devstack.DefaultPorts(), Output: out, SPADir: spaDir(p, serveSPA)})
}

// spaDir is the built SPA (web/dist, `make web`) when serveSPA is set and
// it exists, else "".
func spaDir(p paths, serveSPA bool) string {
	dir := filepath.Join(p.root, "web", "dist")
	if _, err := os.Stat(filepath.Join(dir, "index.html")); !serveSPA || err != nil {
		return ""
	}
	return dir
}

func run(ctx context.Context, stopSignals context.CancelFunc) error {
	p, err := findPaths()
	if err != nil {
		return err
	}
	s, err := start(ctx, p, os.Stderr, true)
	if err != nil {
		return err
	}
	printSummary(os.Stdout, s, spaDir(p, true) != "")
	<-ctx.Done()
	stopSignals() // a second Ctrl-C ends devstack at once
	fmt.Fprintln(os.Stderr, "devstack: stopping")
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "devstack: stopped")
	return nil
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
	fmt.Fprintln(tw, "  TENANT\tNAME\tUSERNAME\tROLE ON THE TASK API")
	for _, t := range s.Entra.Directory().Tenants {
		tenant := fmt.Sprintf("%s (%s)", t.DisplayName, t.ID)
		if !slices.Contains(allowed, t.ID) {
			tenant += ", on no allow-list"
		}
		for i, u := range t.Users {
			if i > 0 {
				tenant = ""
			}
			role := "none"
			for _, a := range t.AppRoleAssignments {
				if a.PrincipalType == entra.PrincipalUser && a.PrincipalID == u.ObjectID && a.ResourceAppID == entra.TaskAPIClientID {
					role = a.Role
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", tenant, u.Name, u.PreferredUsername, role)
		}
	}
	tw.Flush()

	fmt.Fprintf(w, `
Get a token for alice and create a task (or run: make demo):

  TOKEN=$(curl -s --cacert %s \
    -d grant_type=password -d client_id=%s \
    -d username=alice@home.handoff.test -d 'password=%s' \
    --data-urlencode 'scope=api://%s/%s' \
    %s/%s/oauth2/v2.0/token | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"title":"hello"}' %s/api/tasks

`, ca, entra.DevClientID, entra.DefaultUserPassword, entra.TaskAPIClientID, entra.ScopeAccessAsUser,
		entraURL, entra.HomeTenantID, s.URL(devstack.AppTask))
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
		s, err := start(ctx, p, logFile, false)
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
