package entraauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// An endpoint for users with the access_as_user scope and the Admin or
// Editor role, from two tenants. A request without a token is refused
// before any network I/O (the authority's keys are fetched on first use).
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

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/orders", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/orders", nil)
	req.Header.Set("Authorization", "Bearer not-a-jwt")
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 Bearer
	// 401 Bearer error="invalid_token", error_description="the token is not a signed JWT (three non-empty parts)"
}

// An endpoint for applications granted AuditLog.Write, called by one known
// app. A token in the query string is refused, not ignored.
func ExampleAppPermissions() {
	v, err := entraauth.New(context.Background(), entraauth.DefaultAuthority, entraauth.Config{
		ClientID:  "a0000000-0000-4000-8000-000000000003",
		TenantIDs: []string{"10000000-0000-4000-8000-000000000001"},
	})
	if err != nil {
		panic(err)
	}
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	h := v.Protect(record,
		entraauth.AppPermissions("AuditLog.Write"),
		entraauth.CallerApps("a0000000-0000-4000-8000-000000000001"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/records?access_token=x", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 401 {"detail":"tokens in the query string are not accepted; use the Authorization header","error":"invalid_token","status":401,"title":"Unauthorized","type":"about:blank"}
}

// New fails closed: no client id, or no tenants (without AllowAnyTenant),
// is an error at startup rather than a validator that accepts too much.
func ExampleNew() {
	_, err := entraauth.New(context.Background(), entraauth.DefaultAuthority, entraauth.Config{ClientID: "a0000000-0000-4000-8000-000000000001"})
	fmt.Println(err)
	_, err = entraauth.New(context.Background(), "http://login.example", entraauth.Config{})
	fmt.Println(err)
	// Output:
	// entraauth: Config.TenantIDs is empty; list the accepted tenants or set AllowAnyTenant
	// entraauth: authority "http://login.example" must be https://host with no path
}

// A handler's own unit test needs no token: NewContext puts the identity
// Protect would have put there.
func ExampleNewContext() {
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := entraauth.FromContext(r.Context())
		if !ok || !id.HasRole("Admin") {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "%s is an admin", id.PreferredUsername)
	})
	id := &entraauth.Identity{TenantID: "10000000-0000-4000-8000-000000000001", PreferredUsername: "alice@contoso.example", Roles: []string{"Admin"}}
	req := httptest.NewRequest("GET", "/whoami", nil)
	rec := httptest.NewRecorder()
	whoami.ServeHTTP(rec, req.WithContext(entraauth.NewContext(req.Context(), id)))
	fmt.Println(rec.Body.String())
	fmt.Println(id) // String leaves the token out
	// Output:
	// alice@contoso.example is an admin
	// Identity{oid= tid=10000000-0000-4000-8000-000000000001 app=}
}
