package entraauth_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// An endpoint for users with the access_as_user scope and the Admin
// or Editor role, from two tenants.
func ExampleValidator_Protect() {
	v, err := entraauth.New(context.Background(), entraauth.AuthorityFromEnv(), entraauth.Config{
		ClientID:  "a0000000-0000-4000-8000-000000000001",
		TenantIDs: []string{"10000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000002"},
	})
	if err != nil {
		panic(err)
	}
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := entraauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s of tenant %s", id.Name, id.TenantID)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /api/orders", v.Protect(create,
		entraauth.Scopes("access_as_user"),
		entraauth.UserRoles("Admin", "Editor")))
}

// An endpoint for applications granted AuditLog.Write, called by one known app.
func ExampleAppPermissions() {
	v, _ := entraauth.New(context.Background(), entraauth.DefaultAuthority, entraauth.Config{
		ClientID:  "a0000000-0000-4000-8000-000000000003",
		TenantIDs: []string{"10000000-0000-4000-8000-000000000001"},
	})
	var record http.Handler = http.NotFoundHandler()
	http.Handle("POST /api/records", v.Protect(record,
		entraauth.AppPermissions("AuditLog.Write"),
		entraauth.CallerApps("a0000000-0000-4000-8000-000000000001")))
}
