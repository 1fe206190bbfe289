// Package notifyapi is the Notification Service: it records notifications
// sent on behalf of a user (delegated tokens obtained On-Behalf-Of by an
// allowed caller app) and lists a user's own notifications.
package notifyapi

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

// Scopes the service exposes.
const (
	ScopeSend = "Notify.Send"
	ScopeRead = "Notify.Read"
)

// MaxFieldLength bounds event and task_title (characters).
const MaxFieldLength = 200

// Config is the service's configuration.
type Config struct {
	Authority      string
	HomeTenantID   string
	ClientID       string // the Notification Service's app id: its audience
	TenantIDs      []string
	AllowAnyTenant bool
	Callers        []string // app ids allowed to call (azp); default the Task API
	DataDir        string
	HTTPClient     *http.Client
}

// ConfigFromEnv reads the settings listed in Settings.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := appconfig.New(getenv)
	c := Config{
		Authority:    entraauth.DefaultAuthority,
		HomeTenantID: e.GUID("AZURE_HOME_TENANT_ID"),
		ClientID:     e.GUID("AZURE_NOTIFICATION_CLIENT_ID"),
		Callers:      e.GUIDs("ALLOWED_CALLER_APP_IDS"),
		DataDir:      e.String("DATA_DIR"),
		HTTPClient:   e.HTTPClient(10 * time.Second),
	}
	c.TenantIDs, c.AllowAnyTenant = e.Tenants(c.HomeTenantID)
	if a := e.String("AZURE_AUTHORITY_HOST"); a != "" {
		c.Authority = a
	}
	if len(c.Callers) == 0 {
		c.Callers = []string{e.GUID("AZURE_API_CLIENT_ID")}
	}
	if c.DataDir == "" {
		c.DataDir = ".data"
	}
	return c, e.Err()
}

// App serves the Notification Service's endpoints.
type App struct {
	log    *slog.Logger
	notes  store.Notifications
	router *funcapp.Router

	validator *entraauth.Validator // warmed by Warm
}

// New builds the service; it does no I/O.
func New(ctx context.Context, cfg Config, notes store.Notifications, log *slog.Logger) (*App, error) {
	v, err := entraauth.New(ctx, cfg.Authority, entraauth.Config{
		ClientID: cfg.ClientID, TenantIDs: cfg.TenantIDs, AllowAnyTenant: cfg.AllowAnyTenant, HTTPClient: cfg.HTTPClient, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	a := &App{log: log, notes: notes, router: funcapp.NewRouter(), validator: v}
	a.router.Handle("POST", "/api/notify", v.Protect(http.HandlerFunc(a.notify),
		entraauth.Scopes(ScopeSend), entraauth.CallerApps(cfg.Callers...)))
	a.router.Handle("GET", "/api/notifications", v.Protect(http.HandlerFunc(a.list),
		entraauth.Scopes(ScopeRead), entraauth.CallerApps(cfg.Callers...)))
	return a, nil
}

// Handler is the service's router.
func (a *App) Handler() *funcapp.Router { return a.router }

type notifyRequest struct {
	Event     string `json:"event"`
	TaskTitle string `json:"task_title"`
}

func (a *App) notify(w http.ResponseWriter, r *http.Request) {
	id, _ := entraauth.FromContext(r.Context())
	var req notifyRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	for name, v := range map[string]string{"event": req.Event, "task_title": req.TaskTitle} {
		if v == "" || utf8.RuneCountInString(v) > MaxFieldLength {
			problem.Error(w, http.StatusBadRequest, fmt.Sprintf("%s is required, at most %d characters", name, MaxFieldLength))
			return
		}
	}
	// Who is notified comes from the token (OBO kept the user's identity),
	// never from the body.
	n, err := a.notes.AddNotification(r.Context(), store.Notification{
		Event: req.Event, TaskTitle: req.TaskTitle, To: id.Name, Email: id.PreferredUsername,
		UserOID: id.ObjectID, TenantID: id.TenantID, CallerApp: id.CallerAppID,
	})
	if err != nil {
		web.LogFailure(a.log, r, "notification: store failed", err)
		web.StoreError(w, err)
		return
	}
	a.log.InfoContext(r.Context(), "Notification sent", "event", n.Event, "to", n.To, "email", n.Email, "tenant", n.TenantID)
	web.WriteJSON(w, http.StatusCreated, n)
}

func (a *App) list(w http.ResponseWriter, r *http.Request) {
	id, _ := entraauth.FromContext(r.Context())
	limit, cursor, ok := web.Page(w, r)
	if !ok {
		return
	}
	page, err := a.notes.ListNotifications(r.Context(), id.TenantID, id.ObjectID, limit, cursor)
	if err != nil {
		web.StoreError(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, web.NewList(page.Items, page.Next))
}
