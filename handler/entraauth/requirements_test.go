package entraauth

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequirements: each requirement against delegated and app-only
// identities, asserting the answer, the reason and the scope it names.
func TestRequirements(t *testing.T) {
	user := &Identity{Scopes: []string{"access_as_user", "tasks.read"}, Roles: []string{"Editor"}, CallerAppID: "spa"}
	userNoRoles := &Identity{Scopes: []string{"access_as_user"}, CallerAppID: "spa"}
	app := &Identity{AppOnly: true, Roles: []string{"AuditLog.Write"}, CallerAppID: "task-api"}
	appNoRoles := &Identity{AppOnly: true, CallerAppID: "task-api"}
	const (
		notApp    = "needs a user's delegated token, not an app-only token"
		notUser   = "needs an app-only token, not a user's delegated token"
		noScope   = "the token lacks a required scope"
		noRole    = "the user holds none of the required roles"
		noPerm    = "the application lacks a required permission"
		notCaller = "the calling application is not allowed"
	)
	tests := []struct {
		name   string
		req    Requirement
		id     *Identity
		reason string // "" when satisfied
		scope  string // the Scope the 403 names
	}{
		{"Scopes: one of them granted", Scopes("nothing", "tasks.read"), user, "", ""},
		{"Scopes: none granted", Scopes("tasks.write", "admin"), user, noScope, "tasks.write admin"},
		{"Scopes: app-only token", Scopes("access_as_user"), app, notApp, "access_as_user"},
		{"Scopes: none asked", Scopes(), user, noScope, ""},
		{"UserRoles: one held", UserRoles("Admin", "Editor"), user, "", ""},
		{"UserRoles: none held", UserRoles("Admin"), user, noRole, "Admin"},
		{"UserRoles: user with no roles", UserRoles("Admin", "Editor"), userNoRoles, noRole, "Admin Editor"},
		{"UserRoles: app-only token holding the role", UserRoles("AuditLog.Write"), app, notApp, "AuditLog.Write"},
		{"UserRoles: a scope is not a role", UserRoles("access_as_user"), userNoRoles, noRole, "access_as_user"},
		{"AppPermissions: granted", AppPermissions("Other", "AuditLog.Write"), app, "", ""},
		{"AppPermissions: not granted", AppPermissions("Other"), app, noPerm, "Other"},
		{"AppPermissions: app with no roles", AppPermissions("AuditLog.Write"), appNoRoles, noPerm, "AuditLog.Write"},
		{"AppPermissions: delegated token with the role", AppPermissions("Editor"), user, notUser, "Editor"},
		{"CallerApps: listed", CallerApps("other", "spa"), user, "", ""},
		{"CallerApps: not listed", CallerApps("other"), user, notCaller, ""},
		{"CallerApps: app-only caller listed", CallerApps("task-api"), app, "", ""},
		{"CallerApps: empty caller never matches", CallerApps("other"), &Identity{}, notCaller, ""},
		{"Delegated: user", Delegated(), userNoRoles, "", ""},
		{"Delegated: app-only", Delegated(), app, notApp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.req.check(tt.id)
			if tt.reason == "" {
				if e != nil {
					t.Fatalf("refused: %v", e)
				}
				return
			}
			if e == nil {
				t.Fatalf("satisfied; want refused for %q", tt.reason)
			}
			if e.Status != http.StatusForbidden || e.Code != "insufficient_scope" {
				t.Errorf("status %d code %q, want 403 insufficient_scope", e.Status, e.Code)
			}
			if !strings.Contains(e.Description, tt.reason) {
				t.Errorf("reason %q, want %q", e.Description, tt.reason)
			}
			if e.Scope != tt.scope {
				t.Errorf("scope %q, want %q", e.Scope, tt.scope)
			}
		})
	}
}
