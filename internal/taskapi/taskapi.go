// Package taskapi is the Task API: a multi-tenant task list for users of
// the allowed tenants, with roles Admin, Editor and Reader from the token.
// Creating a task notifies the user through the Notification Service
// (On-Behalf-Of the user) and audits the change through the Audit Service
// (as the Task API itself), in parallel, under one deadline; neither can
// fail the create, and the response says how each went.
package taskapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/appconfig"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/web"
)

// Scope and roles the Task API checks.
const (
	ScopeAccessAsUser = "access_as_user"
	RoleAdmin         = "Admin"
	RoleEditor        = "Editor"
	RoleReader        = "Reader"
)

// DefaultDownstreamTimeout is the one deadline of a write's notification
// and audit calls together.
const DefaultDownstreamTimeout = 3 * time.Second

// Config is the Task API's configuration.
type Config struct {
	Authority         string
	HomeTenantID      string
	ClientID          string
	TenantIDs         []string
	AllowAnyTenant    bool
	Notification      Downstream
	Audit             Downstream
	DownstreamTimeout time.Duration
	AuditRetryDelay   time.Duration // before an undelivered audit event's second attempt
	AuditMaxAttempts  int           // before an event that keeps failing is dead-lettered
	SweepBudget       time.Duration // bounds one sweep's run; 0 means SweepBudget
	OBOCacheSize      int
	MaxTenantClients  int
	DataDir           string
	HTTPClient        *http.Client // outbound: authority, Key Vault, downstream services
	// TracerProvider and MeterProvider receive the Task API's spans and
	// metrics (its routes', token validations' and its own); nil means the
	// global providers, which internal/telemetry sets when export is on.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Downstream is a service the Task API calls.
type Downstream struct {
	ClientID string
	URL      string // base URL, e.g. http://127.0.0.1:7072
	Scope    string // default {ClientID}/.default
}

// ConfigFromEnv reads the settings listed in Settings (the credential's
// are read by appconfig.CredentialFromEnv).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := appconfig.New(getenv)
	c := Config{
		Authority:         entraauth.DefaultAuthority,
		HomeTenantID:      e.GUID("AZURE_HOME_TENANT_ID"),
		ClientID:          e.GUID("AZURE_API_CLIENT_ID"),
		Notification:      Downstream{ClientID: e.GUID("AZURE_NOTIFICATION_CLIENT_ID"), URL: e.URL("NOTIFICATION_URL"), Scope: e.String("NOTIFICATION_SCOPE")},
		Audit:             Downstream{ClientID: e.GUID("AZURE_AUDIT_CLIENT_ID"), URL: e.URL("AUDIT_URL"), Scope: e.String("AUDIT_SCOPE")},
		DownstreamTimeout: e.Duration("DOWNSTREAM_TIMEOUT", DefaultDownstreamTimeout, 100*time.Millisecond, 30*time.Second),
		AuditRetryDelay:   e.Duration("AUDIT_RETRY_DELAY", DefaultAuditRetryDelay, time.Millisecond, time.Hour),
		AuditMaxAttempts:  e.Int("AUDIT_MAX_ATTEMPTS", DefaultAuditMaxAttempts, 1, 10_000),
		OBOCacheSize:      e.Int("OBO_CACHE_SIZE", downstream.DefaultOBOCacheSize, 1, 1_000_000),
		MaxTenantClients:  e.Int("MAX_TENANT_CLIENTS", downstream.DefaultMaxTenants, 1, 100_000),
		DataDir:           e.String("DATA_DIR"),
		HTTPClient:        e.HTTPClient(30 * time.Second),
	}
	c.TenantIDs, c.AllowAnyTenant = e.Tenants(c.HomeTenantID)
	if a := e.String("AZURE_AUTHORITY_HOST"); a != "" {
		c.Authority = strings.TrimSuffix(a, "/")
	}
	for _, d := range []*Downstream{&c.Notification, &c.Audit} {
		if d.Scope == "" {
			d.Scope = d.ClientID + "/.default"
		}
	}
	if c.DataDir == "" {
		c.DataDir = ".data"
	}
	return c, e.Err()
}

// Store is what the Task API keeps: tasks, and the audit events written
// with them until the Audit Service has them.
type Store interface {
	store.Tasks
	store.IdempotentTasks
	store.Outbox
	store.OutboxReplay
}

// App serves the Task API.
type App struct {
	cfg          Config
	log          *slog.Logger
	store        Store
	tokens       *downstream.Client
	validator    *entraauth.Validator // warmed by Warm
	hc           *http.Client
	router       *funcapp.Router
	now          func() time.Time
	deadLettered atomic.Int64
	tel          *telemetry
	telOpts      []funcapp.Option // the providers of the routes and the sweep
}

// New builds the Task API from its configuration, its store and its token
// client (one per process). It does no I/O.
func New(ctx context.Context, cfg Config, st Store, tokens *downstream.Client, log *slog.Logger) (*App, error) {
	if cfg.DownstreamTimeout <= 0 {
		cfg.DownstreamTimeout = DefaultDownstreamTimeout
	}
	if cfg.AuditRetryDelay <= 0 {
		cfg.AuditRetryDelay = DefaultAuditRetryDelay
	}
	if cfg.AuditMaxAttempts <= 0 {
		cfg.AuditMaxAttempts = DefaultAuditMaxAttempts
	}
	if cfg.SweepBudget <= 0 {
		cfg.SweepBudget = SweepBudget
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = downstream.NewHTTPClient()
	}
	v, err := entraauth.New(ctx, cfg.Authority, entraauth.Config{
		ClientID: cfg.ClientID, TenantIDs: cfg.TenantIDs, AllowAnyTenant: cfg.AllowAnyTenant,
		HTTPClient: cfg.HTTPClient, Logger: log, TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		return nil, err
	}
	var opts []funcapp.Option
	if cfg.TracerProvider != nil {
		opts = append(opts, funcapp.WithTracerProvider(cfg.TracerProvider))
	}
	if cfg.MeterProvider != nil {
		opts = append(opts, funcapp.WithMeterProvider(cfg.MeterProvider))
	}
	a := &App{cfg: cfg, log: log, store: st, tokens: tokens, validator: v, hc: cfg.HTTPClient, router: funcapp.NewRouter(opts...), now: time.Now,
		tel: newTelemetry(cfg.TracerProvider, cfg.MeterProvider, st), telOpts: opts}
	a.handle(v)
	return a, nil
}

// SweepFunction is the timer-triggered function's name: the Functions host
// invokes it at /{name}, outside the /api routes.
const SweepFunction = "sweep"

// Handler serves the HTTP routes and the timer-triggered sweep.
// (No ServeMux in front of the router: it would redirect paths it finds
// unclean, such as /api/tasks//, which the host answers 404.)
func (a *App) Handler() http.Handler {
	sweep := a.sweepHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/"+SweepFunction {
			sweep.ServeHTTP(w, r)
			return
		}
		a.router.ServeHTTP(w, r)
	})
}

// DeadLettered counts the events this process moved to the dead-letter state.
func (a *App) DeadLettered() int64 { return a.deadLettered.Load() }

// identity is who the route's requirements let in.
func identity(r *http.Request) *entraauth.Identity {
	id, _ := entraauth.FromContext(r.Context())
	return id
}

// taskResponse is a task with how its side effects went.
type taskResponse struct {
	store.Task
	outcome
}

type createRequest struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

type updateRequest struct {
	Title     *string `json:"title"`
	Completed *bool   `json:"completed"`
}

// create reads as its steps: decode, start the notification (its token is
// acquired while the task commits), store the task and its audit event in
// one transaction, run the side effects (which settle the event), respond.
// The route's requirements authorized the caller before it runs.
func (a *App) create(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	req, key, ok := decodeCreate(w, r)
	if !ok {
		return
	}
	// Only now, for a caller authorized and a valid request: a create
	// refused above asks Entra ID for nothing.
	call := a.startNotification(r.Context(), id)
	defer call.finish()
	ev := a.event(r.Context(), id, "task.created")
	t, prior, err := a.storeCreate(r.Context(), id, req, key, &ev)
	switch {
	case err != nil:
		web.LogFailure(a.log, r, "task: create failed", err, "tenant", id.TenantID)
		web.StoreError(w, err)
		return
	case prior != nil:
		a.replay(w, r, prior, requestHash(req))
		return
	}
	resp := taskResponse{Task: t, outcome: a.sideEffects(r.Context(), id, ev, &notice{event: "task_created", task: t, call: call})}
	a.logWrite(r.Context(), "task: created", t.ID, id, resp.outcome)
	body := encodeResponse(resp)
	if key != "" {
		a.recordResponse(r.Context(), id.TenantID, id.ObjectID, key, t.ID, http.StatusCreated, body)
	}
	writeCreated(w, http.StatusCreated, t, body)
}

// decodeCreate reads a create's idempotency key and body; on bad input it
// has answered 400.
func decodeCreate(w http.ResponseWriter, r *http.Request) (req createRequest, key string, ok bool) {
	key, ok = idempotencyKey(w, r)
	if !ok || !web.DecodeJSON(w, r, &req) || !validTitle(w, req.Title) || !validDescription(w, req.Description) {
		return req, "", false
	}
	return req, key, true
}

// storeCreate stores the task and ev in one transaction; with an
// idempotency key, prior is the key's record when it was used before
// (nothing is stored then). ev becomes the event as stored.
func (a *App) storeCreate(ctx context.Context, id *entraauth.Identity, req createRequest, key string, ev *store.OutboxEvent) (
	t store.Task, prior *store.IdempotencyRecord, err error) {
	task := store.Task{
		TenantID: id.TenantID, Title: strings.TrimSpace(req.Title), Description: req.Description,
		CreatedBy: id.ObjectID, CreatedByName: id.Name,
	}
	if key == "" {
		t, err = a.store.CreateTask(ctx, task, ev)
		return t, nil, err
	}
	return a.store.CreateTaskOnce(ctx, task, ev,
		store.Idempotency{Key: key, UserID: id.ObjectID, RequestHash: requestHash(req), Now: a.now()})
}

// event is a fresh audit event for a change by id, to be written with it.
// The request delivers it itself, so it is due for the sweep only once that
// attempt's deadline has passed.
// It carries the request's trace context, so a redelivery joins its trace.
func (a *App) event(ctx context.Context, id *entraauth.Identity, action string) store.OutboxEvent {
	ev := store.OutboxEvent{EventID: newEventID(), TenantID: id.TenantID, Action: action, Actor: id.ObjectID,
		NextAttempt: a.now().Add(a.cfg.DownstreamTimeout + time.Second)}
	traceInto(ctx, &ev)
	return ev
}

// logWrite logs a write that succeeded and how its side effects went: one
// line per write, with the request's trace id.
func (a *App) logWrite(ctx context.Context, msg, taskID string, id *entraauth.Identity, out outcome) {
	attrs := []any{"task_id", taskID, "tenant", id.TenantID, "audit_status", out.AuditStatus}
	if out.NotificationStatus != "" {
		attrs = append(attrs, "notification_status", out.NotificationStatus)
	}
	a.log.InfoContext(ctx, msg, attrs...)
}

func (a *App) update(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	var req updateRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	if req.Title == nil && req.Completed == nil {
		problem.Error(w, http.StatusBadRequest, "send title, completed or both")
		return
	}
	if req.Title != nil {
		if !validTitle(w, *req.Title) {
			return
		}
		trimmed := strings.TrimSpace(*req.Title)
		req.Title = &trimmed
	}
	match, ok := a.ifMatchOrAnswer(w, r, id.TenantID, r.PathValue("id"))
	if !ok {
		return
	}
	ev := a.event(r.Context(), id, "task.updated")
	t, err := a.store.UpdateTask(r.Context(), id.TenantID, r.PathValue("id"), match, store.TaskPatch{Title: req.Title, Completed: req.Completed}, &ev)
	if err != nil {
		web.StoreError(w, err)
		return
	}
	out := a.sideEffects(r.Context(), id, ev, nil)
	a.logWrite(r.Context(), "task: updated", t.ID, id, out)
	w.Header().Set("ETag", t.ETag)
	web.WriteJSON(w, http.StatusOK, taskResponse{Task: t, outcome: out})
}

func (a *App) delete(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	taskID := r.PathValue("id")
	match, ok := a.ifMatchOrAnswer(w, r, id.TenantID, taskID)
	if !ok {
		return
	}
	ev := a.event(r.Context(), id, "task.deleted")
	if err := a.store.DeleteTask(r.Context(), id.TenantID, taskID, match, &ev); err != nil {
		web.StoreError(w, err)
		return
	}
	out := a.sideEffects(r.Context(), id, ev, nil)
	a.logWrite(r.Context(), "task: deleted", taskID, id, out)
	web.WriteJSON(w, http.StatusOK, map[string]any{"id": taskID, "deleted": true, "audit_status": out.AuditStatus, "audit_failure": out.AuditFailure})
}

func (a *App) get(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	t, err := a.store.GetTask(r.Context(), id.TenantID, r.PathValue("id"))
	if err != nil {
		web.StoreError(w, err)
		return
	}
	w.Header().Set("ETag", t.ETag)
	web.WriteJSON(w, http.StatusOK, t)
}

func (a *App) list(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	limit, cursor, ok := web.Page(w, r)
	if !ok {
		return
	}
	page, err := a.store.ListTasks(r.Context(), id.TenantID, limit, cursor)
	if err != nil {
		web.StoreError(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, web.NewList(page.Items, page.Next))
}

// me is who the token says the caller is.
func (a *App) me(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	roles, scopes := id.Roles, id.Scopes
	if roles == nil {
		roles = []string{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"oid": id.ObjectID, "tid": id.TenantID, "name": id.Name, "preferred_username": id.PreferredUsername,
		"roles": roles, "scopes": scopes, "client_app_id": id.CallerAppID,
	})
}
