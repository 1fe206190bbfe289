// Package auditapi is the Audit Service: it records audit entries written by
// applications granted AuditLog.Write (app-only tokens, client credentials)
// and lists them to applications granted AuditLog.Read. Delegated tokens are
// refused even when they carry roles.
package auditapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/appconfig"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/web"
)

// App roles the service checks.
const (
	RoleWrite = "AuditLog.Write"
	RoleRead  = "AuditLog.Read"
)

// MaxFieldLength bounds each field of an audit entry (characters).
const MaxFieldLength = 200

// Config is the service's configuration.
type Config struct {
	Authority    string
	HomeTenantID string
	ClientID     string   // the Audit Service's app id: its audience
	Writers      []string // app ids allowed to write (azp/appid); default the Task API
	DataDir      string
	HTTPClient   *http.Client // for the authority's metadata and keys
}

// ConfigFromEnv reads the settings listed in Settings.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := appconfig.New(getenv)
	c := Config{
		Authority:    entraauth.DefaultAuthority,
		HomeTenantID: e.GUID("AZURE_HOME_TENANT_ID"),
		ClientID:     e.GUID("AZURE_AUDIT_CLIENT_ID"),
		Writers:      e.GUIDs("ALLOWED_CALLER_APP_IDS"),
		DataDir:      e.String("DATA_DIR"),
		HTTPClient:   e.HTTPClient(10 * time.Second),
	}
	if a := e.String("AZURE_AUTHORITY_HOST"); a != "" {
		c.Authority = a
	}
	if len(c.Writers) == 0 {
		c.Writers = []string{e.GUID("AZURE_API_CLIENT_ID")}
	}
	if c.DataDir == "" {
		c.DataDir = ".data"
	}
	return c, e.Err()
}

// App serves the Audit Service's endpoints.
type App struct {
	log    *slog.Logger
	audit  store.AuditLog
	router *funcapp.Router

	validator *entraauth.Validator // warmed by Warm
}

// New builds the service. It does no I/O: the validator fetches keys on
// first use.
func New(ctx context.Context, cfg Config, audit store.AuditLog, log *slog.Logger) (*App, error) {
	v, err := entraauth.New(ctx, cfg.Authority, entraauth.Config{
		ClientID: cfg.ClientID, TenantIDs: []string{cfg.HomeTenantID}, HTTPClient: cfg.HTTPClient, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	a := &App{log: log, audit: audit, router: funcapp.NewRouter(), validator: v}
	a.router.Handle("POST", "/api/audit", v.Protect(http.HandlerFunc(a.write),
		entraauth.AppPermissions(RoleWrite), entraauth.CallerApps(cfg.Writers...)))
	a.router.Handle("GET", "/api/audit", v.Protect(http.HandlerFunc(a.list),
		entraauth.AppPermissions(RoleRead)))
	return a, nil
}

// Handler is the service's router.
func (a *App) Handler() *funcapp.Router { return a.router }

type entryRequest struct {
	EventID    string `json:"event_id"`
	Action     string `json:"action"`
	ResourceID string `json:"resource_id"`
	Actor      string `json:"actor"`
	TenantID   string `json:"tenant_id"`
}

func (a *App) write(w http.ResponseWriter, r *http.Request) {
	id, _ := entraauth.FromContext(r.Context())
	var req entryRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	for name, v := range map[string]string{"event_id": req.EventID, "action": req.Action, "resource_id": req.ResourceID, "actor": req.Actor, "tenant_id": req.TenantID} {
		if v == "" || utf8.RuneCountInString(v) > MaxFieldLength {
			problem.Error(w, http.StatusBadRequest, fmt.Sprintf("%s is required, at most %d characters", name, MaxFieldLength))
			return
		}
	}
	entry, created, err := a.audit.AppendAudit(r.Context(), store.AuditEntry{
		EventID: req.EventID, Action: req.Action, ResourceID: req.ResourceID, Actor: req.Actor,
		TenantID: req.TenantID, CallerApp: id.CallerAppID,
	})
	if err != nil {
		web.LogFailure(a.log, r, "audit: append failed", err, "event_id", req.EventID)
		web.StoreError(w, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // a redelivery: the same entry, never a duplicate
	}
	a.log.InfoContext(r.Context(), "Audit entry recorded", "event_id", entry.EventID, "action", entry.Action, "resource_id", entry.ResourceID,
		"tenant", entry.TenantID, "caller_app", entry.CallerApp, "duplicate", !created)
	web.WriteJSON(w, status, entry)
}

func (a *App) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := web.Page(w, r)
	if !ok {
		return
	}
	page, err := a.audit.ListAudit(r.Context(), r.URL.Query().Get("tenant_id"), limit, cursor)
	if err != nil {
		web.StoreError(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, web.NewList(page.Items, page.Next))
}
