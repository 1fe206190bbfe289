package taskapi

import (
	"net/http"

	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/funcapp"
)

// route is one endpoint: what New serves and Routes lists, from this one
// table. Every route needs the scope access_as_user; roles, when set, are
// the app roles of which the caller needs one.
type route struct {
	method, pattern string
	serve           func(*App, http.ResponseWriter, *http.Request)
	roles           []string
}

var (
	anyRole = []string{RoleAdmin, RoleEditor, RoleReader}
	writers = []string{RoleAdmin, RoleEditor}
	admins  = []string{RoleAdmin}
)

// routes are the Task API's endpoints, exactly as its function.json files
// declare them (route prefix api; TestRoutesAreTheFunctionJSON checks).
var routes = []route{
	{"GET", "/api/tasks", (*App).list, anyRole},
	{"POST", "/api/tasks", (*App).create, writers},
	{"GET", "/api/tasks/{id}", (*App).get, anyRole},
	{"PATCH", "/api/tasks/{id}", (*App).update, writers},
	{"DELETE", "/api/tasks/{id}", (*App).delete, admins},
	{"GET", "/api/me", (*App).me, nil}, // any signed-in user of an allowed tenant
	{"GET", "/api/outbox", (*App).outboxList, outboxReaders},
	{"POST", "/api/outbox/{id}/replay", (*App).replayOne, operators},
	{"POST", "/api/outbox/replay", (*App).replayAll, operators},
}

// Routes are the Task API's endpoints (method and pattern).
func Routes() []funcapp.Route {
	out := make([]funcapp.Route, len(routes))
	for i, rt := range routes {
		out[i] = funcapp.Route{Method: rt.method, Pattern: rt.pattern}
	}
	return out
}

// handle serves every route on a's router, each behind the validator with
// its requirements.
func (a *App) handle(v *entraauth.Validator) {
	for _, rt := range routes {
		reqs := []entraauth.Requirement{entraauth.Scopes(ScopeAccessAsUser)}
		if rt.roles != nil {
			reqs = append(reqs, entraauth.UserRoles(rt.roles...))
		}
		serve := rt.serve
		a.router.Handle(rt.method, rt.pattern, v.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serve(a, w, r)
		}), reqs...))
	}
}

// Settings are the environment variables the Task API reads: every one is
// in its local.settings.json.example, docs/configuration.md's table and the Bicep.
var Settings = []string{
	"AZURE_HOME_TENANT_ID", "AZURE_API_CLIENT_ID", "AZURE_AUTHORITY_HOST",
	"ALLOW_ANY_TENANT", "ALLOWED_TENANT_IDS", "ALLOWED_ORIGINS",
	"AZURE_API_CREDENTIAL", "AZURE_API_CLIENT_SECRET", "AZURE_KEYVAULT_URL",
	"AZURE_API_CLIENT_SECRET_NAME", "AZURE_API_CLIENT_CERTIFICATE_NAME", "AZURE_API_CLIENT_CERTIFICATE_PATH",
	"AZURE_API_CREDENTIAL_REFRESH", "AZURE_CLIENT_ID",
	"AZURE_NOTIFICATION_CLIENT_ID", "NOTIFICATION_URL", "NOTIFICATION_SCOPE",
	"AZURE_AUDIT_CLIENT_ID", "AUDIT_URL", "AUDIT_SCOPE",
	"DOWNSTREAM_TIMEOUT", "AUDIT_SWEEP_SCHEDULE", "AUDIT_RETRY_DELAY", "AUDIT_MAX_ATTEMPTS", "OBO_CACHE_SIZE", "MAX_TENANT_CLIENTS", "DATA_DIR", "STORAGE_BACKEND", "EXTRA_CA_FILE",
}
