package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/appmain"
	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// bench is a running stack with its signed-in users.
type bench struct {
	o        options
	stack    *devstack.Stack
	log      *os.File // the stack's output
	hc       *http.Client
	tokens   []string          // one Task API token per bench user
	profiles map[string]string // app → the profile file it writes, per -profile
}

func startBench(ctx context.Context, o options) (*bench, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	dir, err := loadBenchDirectory()
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(o.stateDir, "bin")
	if err := devstack.Build(ctx, ".", binDir); err != nil {
		return nil, err
	}
	b := &bench{o: o}
	if b.log, err = os.Create(filepath.Join(o.stateDir, "devstack.log")); err != nil {
		return nil, err
	}
	env := map[string]map[string]string{}
	for _, app := range devstack.Apps() {
		env[app] = map[string]string{appmain.EnvWarmUp: o.warmUp}
	}
	if len(o.profiles) > 0 {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	b.profiles = map[string]string{}
	for _, app := range o.profiles {
		if b.profiles[app], err = filepath.Abs(filepath.Join(o.stateDir, app+".cpu.pprof")); err != nil {
			return nil, err
		}
		env[app][appmain.EnvCPUProfile] = b.profiles[app]
	}
	b.stack, err = devstack.Start(ctx, devstack.Options{
		StateDir: o.stateDir, BinDir: binDir, AppEnv: env, Output: b.log,
		EntraDirectory: dir,
		// The sweep timer would add work unrelated to the requests.
		TimersManual: true,
		// Exporting telemetry is measured only when asked (-traces).
		Telemetry: devstack.Telemetry{Off: !o.traces},
	})
	if err != nil {
		b.log.Close()
		return nil, fmt.Errorf("%w (log: %s)", err, b.log.Name())
	}
	// Enough idle connections that no client request opens one after the first.
	b.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * maxConcurrency(), MaxIdleConnsPerHost: 2 * maxConcurrency(),
	}}
	if err := b.signIn(ctx, benchUsers(dir)); err != nil {
		return nil, errorsJoin(err, b.close())
	}
	return b, nil
}

func maxConcurrency() int { return Concurrencies[len(Concurrencies)-1] }

func errorsJoin(a, b error) error {
	if b == nil {
		return a
	}
	return fmt.Errorf("%w; closing: %v", a, b)
}

// signIn signs each user in as a real client does (MSAL, the dev client,
// the password grant: no browser) for the Task API.
func (b *bench) signIn(ctx context.Context, users []benchUser) error {
	clients := map[string]public.Client{}
	scope := "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	for _, u := range users {
		pc, ok := clients[u.domain]
		if !ok {
			var err error
			pc, err = public.New(entra.DevClientID, public.WithAuthority(b.stack.Entra.BaseURL()+"/"+u.domain),
				public.WithHTTPClient(b.stack.Entra.HTTPClient()), public.WithInstanceDiscovery(false))
			if err != nil {
				return err
			}
			clients[u.domain] = pc
		}
		//lint:ignore SA1019 the password grant is deprecated; it signs bench users in without a browser.
		res, err := pc.AcquireTokenByUsernamePassword(ctx, []string{scope}, u.username, entra.DefaultUserPassword)
		if err != nil {
			return fmt.Errorf("sign in as %s: %w", u.username, err)
		}
		b.tokens = append(b.tokens, res.AccessToken)
	}
	return nil
}

// create creates one task as user i mod the number of users.
func (b *bench) create(ctx context.Context, i int) error {
	body := fmt.Sprintf(`{"title":"bench task %d","description":"created by make bench-load"}`, i)
	msg, err := b.do(ctx, http.MethodPost, "/api/tasks", body, i, http.StatusCreated)
	if err != nil {
		return err
	}
	// A create whose side effects failed is fast and cheap: it must not
	// count as one that did the whole work.
	var t struct {
		Notification string `json:"notification_status"`
		Audit        string `json:"audit_status"`
	}
	if err := json.Unmarshal(msg, &t); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if t.Notification != taskapi.NotificationSent || t.Audit != taskapi.AuditLogged {
		return fmt.Errorf("create: notification %q, audit %q, want %q and %q: %.300s",
			t.Notification, t.Audit, taskapi.NotificationSent, taskapi.AuditLogged, msg)
	}
	return nil
}

// list reads the first page of user i's tenant's tasks.
func (b *bench) list(ctx context.Context, i int) error {
	_, err := b.do(ctx, http.MethodGet, "/api/tasks", "", i, http.StatusOK)
	return err
}

// do sends one request as user i and returns the body of the answer, which
// must have status want.
func (b *bench) do(ctx context.Context, method, path, body string, i, want int) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.stack.URL(devstack.AppTask)+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[i%len(b.tokens)])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %.300s", method, path, resp.Status, msg)
	}
	return msg, nil
}

// maxBody bounds what is read of an answer (a page of tasks is far less).
const maxBody = 1 << 20

func (b *bench) close() error {
	err := b.stack.Close()
	b.log.Close()
	return err
}
