package entra_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

func directorySchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(entra.DirectorySchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("directory.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("directory.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateSchema(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestSchemaValidatesDefault: the built-in directory, as -print-config
// writes it, is valid under the schema and loads back.
func TestSchemaValidatesDefault(t *testing.T) {
	s := directorySchema(t)
	data, err := json.MarshalIndent(entra.DefaultDirectory(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateSchema(s, data); err != nil {
		t.Fatalf("the default directory is not valid under the schema: %v", err)
	}
	if _, err := entra.LoadDirectory(bytes.NewReader(data)); err != nil {
		t.Fatalf("the default directory does not load: %v", err)
	}
}

// TestSchemaMatchesTypes: every object of the schema lists exactly the
// JSON fields of its Go type, so the schema cannot drift from the loader.
func TestSchemaMatchesTypes(t *testing.T) {
	var schema struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(entra.DirectorySchema, &schema); err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"tenant": entra.Tenant{}, "user": entra.User{}, "servicePrincipal": entra.ServicePrincipal{},
		"appRoleAssignment": entra.AppRoleAssignment{}, "consentGrant": entra.ConsentGrant{},
		"application": entra.Application{}, "secret": entra.Secret{}, "certificate": entra.Certificate{},
		"federatedCredential": entra.FederatedCredential{}, "scope": entra.Scope{}, "appRole": entra.AppRole{},
		"requiredAccess": entra.RequiredAccess{}, "managedIdentity": entra.ManagedIdentity{},
	}
	check := func(name string, props map[string]any, v any) {
		var fields []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); rt.Field(i).IsExported() && tag != "" && tag != "-" {
				fields = append(fields, tag)
			}
		}
		var keys []string
		for k := range props {
			keys = append(keys, k)
		}
		slices.Sort(fields)
		slices.Sort(keys)
		if !slices.Equal(fields, keys) {
			t.Errorf("%s: schema properties %v, Go fields %v", name, keys, fields)
		}
	}
	check("directory", schema.Properties, entra.Directory{})
	for name, v := range types {
		def, ok := schema.Defs[name]
		if !ok {
			t.Errorf("the schema has no $defs/%s", name)
			continue
		}
		check(name, def.Properties, v)
	}
}

// TestConfigErrors: each broken directory is refused with an error naming
// the key and the reason; the structural ones the schema refuses too.
func TestConfigErrors(t *testing.T) {
	s := directorySchema(t)
	const (
		tenant0 = "tenants[0]"
		taskAPI = 0 // index of the Task API in the default applications
	)
	cases := []struct {
		name   string
		edit   func(d map[string]any)
		want   []string
		schema bool // the schema refuses it as well
	}{
		{"unknown top-level field", func(d map[string]any) { d["tenats"] = []any{} }, []string{"the top level", `unknown field "tenats"`}, true},
		{"unknown nested field", func(d map[string]any) { user(d, 0, 1)["role"] = "Admin" }, []string{"tenants[0].users[1]", `unknown field "role"`}, true},
		{"duplicate client id", func(d map[string]any) {
			apps(d)[1].(map[string]any)["client_id"] = entra.TaskAPIClientID
		}, []string{"applications[1].client_id", entra.TaskAPIClientID, "already the client id of applications[0] (Task API)"}, false},
		{"a user's role the app does not define", func(d map[string]any) {
			assignment(d, 0, 1)["role"] = "Owner"
		}, []string{tenant0 + ".app_role_assignments[1].role", `Task API defines no app role "Owner"`, "Admin, Editor, Reader"}, false},
		{"an app role given to the wrong kind of principal", func(d map[string]any) {
			assignment(d, 0, 0)["role"] = entra.RoleAuditWrite
			assignment(d, 0, 0)["resource_app_id"] = entra.AuditClientID
		}, []string{tenant0 + ".app_role_assignments[0].role", "not for User principals"}, false},
		{"a role assignment to nobody", func(d map[string]any) {
			assignment(d, 0, 0)["principal_id"] = "b0000000-0000-4000-8000-0000000000ff"
		}, []string{tenant0 + ".app_role_assignments[0].principal_id", "no user's oid in this tenant"}, false},
		{"a consent naming an unknown app", func(d map[string]any) {
			consent(d, 0, 0)["client_app_id"] = "a0000000-0000-4000-8000-0000000000ff"
		}, []string{tenant0 + ".consent_grants[0].client_app_id", "no application of the directory"}, false},
		{"a consent for a scope the app does not expose", func(d map[string]any) {
			consent(d, 0, 0)["scopes"] = []any{"Tasks.Nuke"}
		}, []string{tenant0 + ".consent_grants[0].scopes", `Task API exposes no scope "Tasks.Nuke"`, "access_as_user"}, false},
		{"a consent for an unknown user", func(d map[string]any) {
			consent(d, 0, 0)["principal"] = entra.ErinOID // erin is in the second tenant
		}, []string{tenant0 + ".consent_grants[0].principal", "neither AllPrincipals nor a user's oid"}, false},
		{"a consent of no scope", func(d map[string]any) { consent(d, 0, 0)["scopes"] = []any{} }, []string{tenant0 + ".consent_grants[0].scopes", "at least one"}, true},
		{"a service principal of no app", func(d map[string]any) {
			tenant(d, 0)["service_principals"].([]any)[0].(map[string]any)["app_id"] = "a0000000-0000-4000-8000-0000000000ff"
		}, []string{tenant0 + ".service_principals[0].app_id", "no application"}, false},
		{"a duplicate username", func(d map[string]any) {
			user(d, 0, 1)["preferred_username"] = "ALICE@home.handoff.test"
		}, []string{tenant0 + ".users[1].preferred_username", "already users[0]'s"}, false},
		{"an unknown home tenant", func(d map[string]any) {
			apps(d)[taskAPI].(map[string]any)["home_tenant"] = "90000000-0000-4000-8000-000000000009"
		}, []string{"applications[0].home_tenant", "no tenant of the directory"}, false},
		{"a scope defined twice", func(d map[string]any) {
			a := apps(d)[1].(map[string]any)
			a["scopes"] = append(a["scopes"].([]any), a["scopes"].([]any)[0])
		}, []string{"applications[1].scopes[2].value", `"Notify.Send" is defined twice`}, false},
		{"a wrong member type", func(d map[string]any) {
			apps(d)[taskAPI].(map[string]any)["app_roles"].([]any)[0].(map[string]any)["allowed_member_types"] = []any{"Group"}
		}, []string{"applications[0].app_roles[0].allowed_member_types", `"Group"`}, true},
		{"two default managed identities", func(d map[string]any) {
			mis := d["managed_identities"].([]any)
			mi := map[string]any{"name": "second", "client_id": "e0000000-0000-4000-8000-000000000002", "object_id": "e1000000-0000-4000-8000-000000000002", "tenant": entra.HomeTenantID, "default": true}
			d["managed_identities"] = append(mis, mi)
		}, []string{"managed_identities[1].default", "only one"}, false},
		{"a tenant id that is no GUID", func(d map[string]any) { tenant(d, 2)["id"] = "Northwind" }, []string{"tenant", `"Northwind"`, "GUID"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d map[string]any
			data, _ := json.Marshal(entra.DefaultDirectory())
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			tc.edit(d)
			data, _ = json.Marshal(d)
			_, err := entra.LoadDirectory(bytes.NewReader(data))
			if err == nil {
				t.Fatal("LoadDirectory accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if serr := validateSchema(s, data); tc.schema && serr == nil {
				t.Errorf("the schema accepts what the loader refuses")
			}
		})
	}
}

func TestConfigSizeLimit(t *testing.T) {
	big := `{"tenants": [], "identity_header": "` + strings.Repeat("x", entra.MaxConfigBytes) + `"}`
	if _, err := entra.LoadDirectory(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file over the limit: %v", err)
	}
}

// TestExampleConfig: the example in docs/ (one API, one daemon) is valid
// under the schema, loads, and works: the daemon gets an app-only token
// for the API with MSAL, and the API's validator accepts it with its role.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../docs/emulator-example.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateSchema(directorySchema(t), data); err != nil {
		t.Fatalf("docs/emulator-example.json is not valid under the schema: %v", err)
	}
	dir, err := entra.LoadDirectory(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	const (
		tenantID = "c0000000-0000-4000-8000-00000000c0de"
		apiID    = "c2000000-0000-4000-8000-000000000001"
		daemonID = "c2000000-0000-4000-8000-000000000002"
	)
	srv := entratest.Start(t, entra.Config{Directory: dir})
	cred, err := confidential.NewCredFromSecret("dev-invoice-daemon-secret-not-for-production")
	if err != nil {
		t.Fatal(err)
	}
	daemon := confidentialClient(t, srv, tenantID, daemonID, cred)
	res, err := daemon.AcquireTokenByCredential(t.Context(), []string{"api://orders.contoso.test/.default"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := entraauth.New(t.Context(), srv.BaseURL(), entraauth.Config{
		ClientID: apiID, IdentifierURIs: []string{"api://orders.contoso.test"}, TenantIDs: []string{tenantID}, HTTPClient: srv.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Validate(t.Context(), res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !id.AppOnly || !id.HasRole("Orders.Read.All") || id.CallerAppID != daemonID {
		t.Errorf("daemon identity %+v", id)
	}
	// And ada, through the token command's entry point.
	tok, err := srv.MintToken(entra.MintRequest{User: "ada", Resource: "api://orders.contoso.test"})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Validate(t.Context(), tok.AccessToken); err != nil || !id.HasRole("Orders.Admin") || !id.HasScope("Orders.Read") {
		t.Errorf("ada's minted token: %+v, %v", id, err)
	}
}

func tenant(d map[string]any, i int) map[string]any {
	return d["tenants"].([]any)[i].(map[string]any)
}

func user(d map[string]any, ti, ui int) map[string]any {
	return tenant(d, ti)["users"].([]any)[ui].(map[string]any)
}

func assignment(d map[string]any, ti, i int) map[string]any {
	return tenant(d, ti)["app_role_assignments"].([]any)[i].(map[string]any)
}

func consent(d map[string]any, ti, i int) map[string]any {
	return tenant(d, ti)["consent_grants"].([]any)[i].(map[string]any)
}

func apps(d map[string]any) []any { return d["applications"].([]any) }
