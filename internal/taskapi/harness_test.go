package taskapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// harness is the Task API with its real neighbours: the Entra emulator,
// the Audit and Notification Services (each on its own SQLite store, over
// HTTP), and a SQLite store of its own.
type harness struct {
	srv        *entra.Server
	app        *App
	h          http.Handler
	st         *sqlite.Store
	auditStore *sqlite.Store
	notes      *sqlite.Store
	clock      *entratest.Clock
	alice, bob string // user tokens for the Task API
	// notifySrv and auditSrv serve the real services; a non-zero
	// notifyFault or auditFault makes it answer that status instead.
	notifySrv, auditSrv     *httptest.Server
	notifyFault, auditFault atomic.Int32
	// notifySeen and auditSeen keep the traceparent of each request the
	// services received.
	notifySeen, auditSeen seenHeaders
	// notifyConns and auditConns record, per request, the method and the
	// client's address (one per connection).
	notifyConns, auditConns connLog
}

// connLog records each request's method and client address.
type connLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD remote-addr"
}

func (l *connLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+r.RemoteAddr)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *connLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

// seenHeaders keeps the traceparent headers of the requests a service got.
type seenHeaders struct {
	mu           sync.Mutex
	traceparents []string
}

func (s *seenHeaders) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.traceparents...)
}

// faulty serves h unless *fault holds a status, which it answers instead;
// seen keeps each request's traceparent.
func faulty(h http.Handler, fault *atomic.Int32, seen *seenHeaders) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.traceparents = append(seen.traceparents, r.Header.Get("traceparent"))
		seen.mu.Unlock()
		if s := fault.Load(); s != 0 {
			http.Error(w, "injected fault", int(s))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func openStore(t *testing.T, name string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), name+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// quietLog discards.
func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	return newHarnessIn(t, nil, tweak)
}

// newHarnessIn is newHarness in the emulator's directory dir (nil: the default).
func newHarnessIn(t *testing.T, dir *entra.Directory, tweak func(*Config)) *harness {
	t.Helper()
	srv := entratest.Start(t, entra.Config{Directory: dir})
	hc := srv.HTTPClient()
	h := &harness{srv: srv, st: openStore(t, "task"), auditStore: openStore(t, "audit"), notes: openStore(t, "notify"), clock: &entratest.Clock{}}

	audit, err := auditapi.New(t.Context(), auditapi.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.AuditClientID, Writers: []string{entra.TaskAPIClientID}, HTTPClient: hc}, h.auditStore, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	auditSrv := httptest.NewServer(h.auditConns.wrap(faulty(funcapp.Wrap(audit.Handler(), funcapp.Config{Logger: quietLog()}), &h.auditFault, &h.auditSeen)))
	t.Cleanup(auditSrv.Close)
	h.auditSrv = auditSrv
	notify, err := notifyapi.New(t.Context(), notifyapi.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.NotificationClientID, TenantIDs: []string{entra.HomeTenantID, entra.SecondTenantID},
		Callers: []string{entra.TaskAPIClientID}, HTTPClient: hc}, h.notes, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	notifySrv := httptest.NewServer(h.notifyConns.wrap(faulty(funcapp.Wrap(notify.Handler(), funcapp.Config{Logger: quietLog()}), &h.notifyFault, &h.notifySeen)))
	t.Cleanup(notifySrv.Close)
	h.notifySrv = notifySrv

	cred, err := downstream.ClientSecret(entra.TaskAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := downstream.New(downstream.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.TaskAPIClientID, Credential: cred, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID, ClientID: entra.TaskAPIClientID,
		TenantIDs:    []string{entra.HomeTenantID, entra.SecondTenantID},
		Notification: Downstream{ClientID: entra.NotificationClientID, URL: notifySrv.URL, Scope: entra.NotificationClientID + "/.default"},
		Audit:        Downstream{ClientID: entra.AuditClientID, URL: auditSrv.URL, Scope: entra.AuditClientID + "/.default"},
		HTTPClient:   hc,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h.app, err = New(t.Context(), cfg, h.st, tokens, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	h.app.now = h.clock.Now
	h.h = funcapp.Wrap(h.app.Handler(), funcapp.Config{Logger: quietLog()})
	h.alice = userToken(t, srv, "alice@home.handoff.test")
	h.bob = userToken(t, srv, "bob@home.handoff.test")
	return h
}

// userTokenIn signs a user of tenant in with MSAL (the password grant) for the Task API.
func userTokenIn(t *testing.T, srv *entra.Server, tenant, user string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(tenant)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), []string{"api://" + entra.TaskAPIClientID + "/" + ScopeAccessAsUser},
		user, entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// userToken signs a user of the home tenant in for the Task API.
func userToken(t *testing.T, srv *entra.Server, user string) string {
	t.Helper()
	return userTokenIn(t, srv, entra.HomeTenantID, user)
}

// answer is a response of the Task API.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request to the Task API as the user whose token is tok;
// headers are name, value pairs.
func (h *harness) do(t *testing.T, method, path, tok, body string, headers ...string) answer {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, r)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(a.raw, &a.body)
	return a
}

// tasks lists the home tenant's tasks in the store.
func (h *harness) tasks(t *testing.T) []store.Task {
	t.Helper()
	p, err := h.st.ListTasks(t.Context(), entra.HomeTenantID, store.MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// auditCount counts the Audit Service's entries.
func (h *harness) auditCount(t *testing.T) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		p, err := h.auditStore.ListAudit(t.Context(), "", store.MaxPageSize, cursor)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Items)
		if cursor = p.Next; cursor == "" {
			return n
		}
	}
}

// notificationCount counts a user's notifications.
func (h *harness) notificationCount(t *testing.T, oid string) int {
	t.Helper()
	p, err := h.notes.ListNotifications(t.Context(), entra.HomeTenantID, oid, store.MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Items)
}

// logBuffer is a slog destination tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
