package infra

// The app registrations entra.bicep declares are the Entra emulator's
// default directory (emulator/entra/default.go), restricted to the four apps
// the system deploys: the scopes and roles the code requires, the same
// audiences, permissions, consents and federated credential.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// deployedRegistrations are the emulator's apps that are deployed. The
// emulator's dev client and operator app are for local scripts only.
var deployedRegistrations = []string{entra.TaskAPIClientID, entra.NotificationClientID, entra.AuditClientID, entra.SPAClientID}

// registration is one app registration, in terms both sides share.
type registration struct {
	DisplayName        string
	SignInAudience     string
	Scopes             []string // value:User|Admin
	Roles              []string // value:member types
	TokenVersion       int
	OptionalClaims     []string // access token
	KnownClients       []string // client ids
	RequiredAccess     []string // resource client id + " " + Scope|Role:value
	AssignmentRequired bool     // on its home tenant service principal
}

// directory is the part of a directory the deployment declares.
type directory struct {
	Apps map[string]registration // by the emulator's client id
	// Admin consents in the home tenant: client -> resource: scopes.
	Grants []string
	// Application permissions granted: principal -> resource: role.
	AppPermissions []string
	// The Task API's federated credentials: issuer | subject | audiences.
	FederatedCredentials []string
}

// The placeholders the two sides share for values they cannot.
const (
	authorityPlaceholder = "<authority>"
	homeTenant           = "<home tenant>"
	taskIdentityObjectID = "<task api identity object id>"
)

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// fromEmulator is the emulator's default directory, reduced to the
// deployed apps and their home tenant.
func fromEmulator(d *entra.Directory) directory {
	deployed := func(id string) bool { return slices.Contains(deployedRegistrations, id) }
	out := directory{Apps: map[string]registration{}}
	var home *entra.Tenant
	for _, t := range d.Tenants {
		if t.ID == entra.HomeTenantID {
			home = t
		}
	}
	for _, a := range d.Applications {
		if !deployed(a.ClientID) {
			continue
		}
		r := registration{DisplayName: a.DisplayName, SignInAudience: a.SignInAudience, TokenVersion: a.AccessTokenVersion, OptionalClaims: sorted(a.OptionalClaims)}
		for _, s := range a.Scopes {
			typ := "User"
			if s.AdminConsentRequired {
				typ = "Admin"
			}
			r.Scopes = append(r.Scopes, s.Value+":"+typ)
		}
		for _, role := range a.AppRoles {
			r.Roles = append(r.Roles, role.Value+":"+strings.Join(sorted(role.AllowedMemberTypes), ","))
		}
		for _, k := range a.KnownClientApps {
			if deployed(k) {
				r.KnownClients = append(r.KnownClients, k)
			}
		}
		for _, ra := range a.RequiredAccess {
			if !deployed(ra.ResourceAppID) {
				continue
			}
			for _, s := range ra.Scopes {
				r.RequiredAccess = append(r.RequiredAccess, ra.ResourceAppID+" Scope:"+s)
			}
			for _, s := range ra.Roles {
				r.RequiredAccess = append(r.RequiredAccess, ra.ResourceAppID+" Role:"+s)
			}
		}
		for _, sp := range home.ServicePrincipals {
			if sp.AppID == a.ClientID {
				r.AssignmentRequired = sp.AppRoleAssignmentRequired
			}
		}
		r.Scopes, r.Roles, r.KnownClients, r.RequiredAccess = sorted(r.Scopes), sorted(r.Roles), sorted(r.KnownClients), sorted(r.RequiredAccess)
		out.Apps[a.ClientID] = r
		if a.ClientID == entra.TaskAPIClientID {
			for _, fc := range a.FederatedCredentials {
				issuer := strings.ReplaceAll(fc.Issuer, "{base}/"+entra.HomeTenantID, authorityPlaceholder+"/"+homeTenant)
				subject := fc.Subject
				if subject == entra.TaskAPIIdentityObjectID {
					subject = taskIdentityObjectID
				}
				out.FederatedCredentials = append(out.FederatedCredentials, issuer+" | "+subject+" | "+strings.Join(fc.Audiences, ","))
			}
		}
	}
	for _, g := range home.ConsentGrants {
		if g.Principal == entra.AllPrincipals && deployed(g.ClientAppID) && deployed(g.ResourceAppID) {
			out.Grants = append(out.Grants, g.ClientAppID+" -> "+g.ResourceAppID+": "+strings.Join(sorted(g.Scopes), " "))
		}
	}
	for _, a := range home.AppRoleAssignments {
		if a.PrincipalType == entra.PrincipalServicePrincipal && deployed(a.PrincipalID) && deployed(a.ResourceAppID) {
			out.AppPermissions = append(out.AppPermissions, a.PrincipalID+" -> "+a.ResourceAppID+": "+a.Role)
		}
	}
	out.Grants, out.AppPermissions = sorted(out.Grants), sorted(out.AppPermissions)
	return out
}

// diffDirectories reports how got differs from want.
func diffDirectories(want, got directory) []string {
	var problems []string
	for _, id := range slices.Sorted(maps.Keys(want.Apps)) {
		w := want.Apps[id]
		g, ok := got.Apps[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not declared", w.DisplayName))
			continue
		}
		wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
		for i := range wv.NumField() {
			f := wv.Type().Field(i).Name
			if f == "DisplayName" {
				continue
			}
			if !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
				problems = append(problems, fmt.Sprintf("%s: %s is %v in Bicep, %v in the emulator", w.DisplayName, f, gv.Field(i).Interface(), wv.Field(i).Interface()))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got.Apps)) {
		if _, ok := want.Apps[id]; !ok {
			problems = append(problems, fmt.Sprintf("%s: declared but not in the emulator", id))
		}
	}
	for _, f := range []struct {
		name      string
		want, got []string
	}{
		{"admin consents", want.Grants, got.Grants},
		{"application permissions", want.AppPermissions, got.AppPermissions},
		{"Task API federated credentials", want.FederatedCredentials, got.FederatedCredentials},
	} {
		if !slices.Equal(f.want, f.got) {
			problems = append(problems, fmt.Sprintf("%s: %q in Bicep, %q in the emulator", f.name, f.got, f.want))
		}
	}
	return problems
}

// entraModel reads entra.bicep and entra-spa-access.bicep into a
// directory, with the problems of form it finds on the way.
type entraModel struct {
	t        *testing.T
	main     *bicepFile
	file     *bicepFile
	symbols  map[string]string // application symbol -> emulator client id
	apps     map[string][]*expr
	sps      map[string]string          // service principal symbol -> application symbol
	perms    map[string]permissionIdent // permissionIds key -> definition
	problems []string
}

type permissionIdent struct{ app, kind, value string } // kind Scope or Role

func (m *entraModel) errorf(format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

var displayNameRE = regexp.MustCompile(`^'(.+) \(\$\{displayNameSuffix\}\)'$`)

func readEntra(t *testing.T, tpl *templates) (directory, []string) {
	t.Helper()
	m := &entraModel{t: t, main: tpl.main, file: tpl.module(t, "entra.bicep"), symbols: map[string]string{}, apps: map[string][]*expr{},
		sps: map[string]string{}, perms: map[string]permissionIdent{}}
	spaFile := tpl.module(t, "entra-spa-access.bicep")
	for _, f := range []*bicepFile{m.file, spaFile} {
		if !slices.Contains(f.extensions, "microsoftGraphV1") {
			m.errorf("%s: no extension microsoftGraphV1", f.path)
		}
	}
	names := map[string]string{}
	for _, a := range entra.DefaultDirectory().Applications {
		if slices.Contains(deployedRegistrations, a.ClientID) {
			names[a.DisplayName] = a.ClientID
		}
	}
	for _, d := range m.file.resources("Microsoft.Graph/applications@") {
		if d.existing || d.typ != "Microsoft.Graph/applications@v1.0" {
			m.errorf("%s: %s must be a new Microsoft.Graph/applications@v1.0", m.file.path, d.name)
			continue
		}
		dn := displayNameRE.FindStringSubmatch(canonical(d.body().get("displayName")))
		if dn == nil || names[dn[1]] == "" {
			m.errorf("%s: %s: displayName %s is not '<an emulator app> (${displayNameSuffix})'", m.file.path, d.name, canonical(d.body().get("displayName")))
			continue
		}
		m.symbols[d.name] = names[dn[1]]
		m.apps[d.name] = []*expr{d.body()}
	}
	// The SPA's second declaration: its parameters are entra.bicep's expressions.
	calls := moduleCalls(m.file, "entra-spa-access.bicep")
	if len(calls) != 1 {
		m.errorf("%s: want one module of entra-spa-access.bicep, have %d", m.file.path, len(calls))
	} else {
		p := params(calls[0])
		for _, d := range spaFile.resources("Microsoft.Graph/applications@") {
			body := substituteParams(d.body(), p)
			sym, ok := symbolRef(body.get("uniqueName"), "uniqueName")
			if !ok || m.apps[sym] == nil {
				m.errorf("%s: %s: uniqueName must be an app of entra.bicep (<app>.uniqueName)", spaFile.path, d.name)
				continue
			}
			if ref, _ := symbolRef(body.get("displayName"), "displayName"); ref != sym {
				m.errorf("%s: %s: displayName must be %s.displayName", spaFile.path, d.name, sym)
			}
			first := m.apps[sym][0]
			for _, k := range body.obj.keys {
				if k == "uniqueName" || k == "displayName" {
					continue
				}
				if prev := first.get(k); prev != nil && render(prev) != render(body.get(k)) {
					m.errorf("%s: %s.%s is %s, but %s in entra.bicep", spaFile.path, d.name, k, render(body.get(k)), render(prev))
				}
			}
			m.apps[sym] = append(m.apps[sym], body)
		}
	}
	m.readPermissions()
	dir := directory{Apps: map[string]registration{}}
	for sym, id := range m.symbols {
		dir.Apps[id] = m.registration(sym)
	}
	m.readServicePrincipals(&dir)
	m.readGrants(&dir)
	m.readFederatedCredentials(&dir)
	return dir, m.problems
}

// prop is an app's property: its last declaration's.
func (m *entraModel) prop(sym, path string) *expr {
	var out *expr
	for _, body := range m.apps[sym] {
		if e := body.get(path); e != nil {
			out = e
		}
	}
	return resolveVar(m.file, out)
}

var permissionRefRE = regexp.MustCompile(`^permissionIds\.([A-Za-z]+)$`)

// readPermissions reads the scopes and roles each app defines, whose ids
// must be permissionIds.<key>, each a guid() of fixed strings.
func (m *entraModel) readPermissions() {
	ids := m.file.find("var", "permissionIds")
	if ids == nil || ids.value.obj == nil {
		m.errorf("%s: no var permissionIds = { ... }", m.file.path)
		return
	}
	fixedGUID := regexp.MustCompile(`^guid\(('[^'$]*'(, )?)+\)$`)
	seen := map[string]string{}
	for k, e := range ids.value.obj.props {
		if !fixedGUID.MatchString(canonical(e)) {
			m.errorf("permissionIds.%s = %s: want guid() of string literals (a fixed id)", k, canonical(e))
		}
		if prev, dup := seen[canonical(e)]; dup {
			m.errorf("permissionIds.%s and .%s are the same id", k, prev)
		}
		seen[canonical(e)] = k
	}
	for _, sym := range slices.Sorted(maps.Keys(m.apps)) {
		for _, def := range []struct{ path, kind string }{{"api.oauth2PermissionScopes", "Scope"}, {"appRoles", "Role"}} {
			list := m.prop(sym, def.path)
			if list == nil {
				continue
			}
			for _, it := range list.arr {
				ref := permissionRefRE.FindStringSubmatch(canonical(it.get("id")))
				value, _ := it.get("value").str()
				if ref == nil || ids.value.obj.props[ref[1]] == nil {
					m.errorf("%s: %s %s: id %s, want permissionIds.<key>", sym, def.kind, value, canonical(it.get("id")))
					continue
				}
				if prev, dup := m.perms[ref[1]]; dup {
					m.errorf("permissionIds.%s names both %s %s and %s %s", ref[1], prev.app, prev.value, sym, value)
				}
				if enabled := canonical(it.get("isEnabled")); enabled != "true" {
					m.errorf("%s: %s %s: isEnabled %q, want true", sym, def.kind, value, enabled)
				}
				m.perms[ref[1]] = permissionIdent{sym, def.kind, value}
			}
		}
	}
}

func (m *entraModel) appOf(e *expr) string {
	sym, ok := symbolRef(e, "appId")
	if !ok || m.symbols[sym] == "" {
		m.errorf("%s is not <app>.appId of an app of entra.bicep", canonical(e))
		return ""
	}
	return m.symbols[sym]
}

func (m *entraModel) registration(sym string) registration {
	r := registration{DisplayName: sym}
	r.SignInAudience, _ = m.prop(sym, "signInAudience").str()
	if v := m.prop(sym, "api.requestedAccessTokenVersion"); v != nil {
		r.TokenVersion, _ = strconv.Atoi(v.raw)
	}
	if scopes := m.prop(sym, "api.oauth2PermissionScopes"); scopes != nil {
		for _, s := range scopes.arr {
			value, _ := s.get("value").str()
			typ, _ := s.get("type").str()
			r.Scopes = append(r.Scopes, value+":"+typ)
		}
	}
	if roles := m.prop(sym, "appRoles"); roles != nil {
		for _, role := range roles.arr {
			value, _ := role.get("value").str()
			types, _ := role.get("allowedMemberTypes").strings()
			r.Roles = append(r.Roles, value+":"+strings.Join(sorted(types), ","))
		}
	}
	if claims := m.prop(sym, "optionalClaims"); claims != nil {
		if at := claims.get("accessToken"); at != nil {
			for _, c := range at.arr {
				name, _ := c.get("name").str()
				r.OptionalClaims = append(r.OptionalClaims, name)
			}
		}
	}
	if known := m.prop(sym, "api.knownClientApplications"); known != nil {
		for _, k := range known.arr {
			r.KnownClients = append(r.KnownClients, m.appOf(k))
		}
	}
	if rra := m.prop(sym, "requiredResourceAccess"); rra != nil {
		for _, res := range rra.arr {
			resource := m.appOf(res.get("resourceAppId"))
			for _, acc := range res.get("resourceAccess").arr {
				typ, _ := acc.get("type").str()
				ref := permissionRefRE.FindStringSubmatch(canonical(acc.get("id")))
				if ref == nil {
					m.errorf("%s: requiredResourceAccess id %s, want permissionIds.<key>", sym, canonical(acc.get("id")))
					continue
				}
				def := m.perms[ref[1]]
				if def.kind != typ || m.symbols[def.app] != resource {
					m.errorf("%s: requiredResourceAccess %s %s is %s %s of %s", sym, typ, ref[1], def.kind, def.value, def.app)
				}
				r.RequiredAccess = append(r.RequiredAccess, resource+" "+typ+":"+def.value)
			}
		}
	}
	// Identifier URIs: api://<tenant id>/<name>, never the app's own id.
	if uris := m.prop(sym, "identifierUris"); uris != nil {
		for _, u := range uris.arr {
			u = resolveVar(m.file, u)
			text := canonical(u)
			if strings.Contains(text, sym+".") {
				m.errorf("%s: identifier URI %s depends on the app itself", sym, text)
			}
			if !strings.HasPrefix(text, "'api://${tenantId}/${namePrefix}-") {
				m.errorf("%s: identifier URI %s, want 'api://${tenantId}/${namePrefix}-<name>'", sym, text)
			}
		}
	}
	r.Scopes, r.Roles, r.OptionalClaims, r.KnownClients, r.RequiredAccess = sorted(r.Scopes), sorted(r.Roles), sorted(r.OptionalClaims), sorted(r.KnownClients), sorted(r.RequiredAccess)
	return r
}

func (m *entraModel) readServicePrincipals(dir *directory) {
	for _, sp := range m.file.resources("Microsoft.Graph/servicePrincipals@") {
		if sp.existing {
			continue
		}
		app, ok := symbolRef(sp.body().get("appId"), "appId")
		if !ok || m.symbols[app] == "" {
			m.errorf("service principal %s: appId %s is not an app of entra.bicep", sp.name, canonical(sp.body().get("appId")))
			continue
		}
		if slices.Contains(slices.Collect(maps.Values(m.sps)), app) {
			m.errorf("two service principals of %s", app)
		}
		m.sps[sp.name] = app
		r := dir.Apps[m.symbols[app]]
		r.AssignmentRequired = canonical(sp.body().get("appRoleAssignmentRequired")) == "true"
		dir.Apps[m.symbols[app]] = r
	}
	for sym := range m.symbols {
		if !slices.Contains(slices.Collect(maps.Values(m.sps)), sym) {
			m.errorf("%s has no service principal", sym)
		}
	}
}

// spApp is the client id of the app whose service principal e (<sp>.id) is.
func (m *entraModel) spApp(e *expr) string {
	sym, ok := symbolRef(e, "id")
	if !ok || m.sps[sym] == "" {
		m.errorf("%s is not <service principal>.id of entra.bicep", canonical(e))
		return ""
	}
	return m.symbols[m.sps[sym]]
}

func (m *entraModel) readGrants(dir *directory) {
	for _, g := range m.file.resources("Microsoft.Graph/oauth2PermissionGrants@") {
		b := g.body()
		if ct, _ := b.get("consentType").str(); ct != entra.AllPrincipals {
			m.errorf("grant %s: consentType %s, want 'AllPrincipals' (admin consent)", g.name, canonical(b.get("consentType")))
		}
		scope, _ := b.get("scope").str()
		dir.Grants = append(dir.Grants, m.spApp(b.get("clientId"))+" -> "+m.spApp(b.get("resourceId"))+": "+strings.Join(sorted(strings.Fields(scope)), " "))
	}
	// A second deployment of an existing appRoleAssignedTo fails
	// (msgraph-bicep-types#161): the postprovision hook assigns the app
	// role from the appRoleAssignment output instead.
	for _, a := range m.file.resources("Microsoft.Graph/appRoleAssignedTo@") {
		m.errorf("app role assignment %s is a Bicep resource: re-provisioning fails on it (msgraph-bicep-types#161); output it for the postprovision hook", a.name)
	}
	if out := m.file.find("output", "appRoleAssignment"); out == nil || out.value.obj == nil {
		m.errorf("%s: no output appRoleAssignment = { principalId, resourceId, appRoleId }", m.file.path)
	} else {
		m.readAppRoleAssignment(dir, out.value)
	}
	dir.Grants, dir.AppPermissions = sorted(dir.Grants), sorted(dir.AppPermissions)
}

// hookAssignmentOutputs are main.bicep's outputs the postprovision hook
// assigns the app role from, by property of entra.bicep's appRoleAssignment.
var hookAssignmentOutputs = map[string]string{
	"principalId": "AZURE_TASK_API_SP_ID",
	"resourceId":  "AZURE_AUDIT_SP_ID",
	"appRoleId":   "AUDIT_WRITE_ROLE_ID",
}

// readAppRoleAssignment reads the application permission the hook grants:
// entra.bicep's output, passed on by main.bicep's outputs.
func (m *entraModel) readAppRoleAssignment(dir *directory, b *expr) {
	resource := m.spApp(b.get("resourceId"))
	ref := permissionRefRE.FindStringSubmatch(canonical(b.get("appRoleId")))
	if ref == nil {
		m.errorf("output appRoleAssignment: appRoleId %s, want permissionIds.<key>", canonical(b.get("appRoleId")))
		return
	}
	def := m.perms[ref[1]]
	if def.kind != "Role" || m.symbols[def.app] != resource {
		m.errorf("output appRoleAssignment: %s is not a role of its resource", ref[1])
	}
	for prop, name := range hookAssignmentOutputs {
		out := m.main.find("output", name)
		if want := "entra.outputs.appRoleAssignment." + prop; out == nil || canonical(out.value) != want {
			m.errorf("main.bicep: output %s must be %s (the postprovision hook reads it)", name, want)
		}
	}
	dir.AppPermissions = append(dir.AppPermissions, m.spApp(b.get("principalId"))+" -> "+resource+": "+def.value)
}

func (m *entraModel) readFederatedCredentials(dir *directory) {
	if tv := m.file.find("var", "tenantId"); tv == nil || canonical(tv.value) != "tenant().tenantId" {
		m.errorf("%s: var tenantId must be tenant().tenantId", m.file.path)
	}
	call := m.main.find("module", "entra")
	for _, fc := range m.file.resources("Microsoft.Graph/applications/federatedIdentityCredentials@") {
		app := fc.parent
		if app == nil || m.symbols[app.name] != entra.TaskAPIClientID {
			m.errorf("federated credential %s is not the Task API's", fc.name)
			continue
		}
		b := fc.body()
		issuer := strings.Trim(canonical(b.get("issuer")), "'")
		issuer = strings.ReplaceAll(issuer, "${environment().authentication.loginEndpoint}", authorityPlaceholder+"/")
		issuer = strings.ReplaceAll(issuer, "${tenantId}", homeTenant)
		subject := canonical(b.get("subject"))
		if subject == "taskApiIdentityPrincipalId" && call != nil {
			// main.bicep passes the Task API identity's principal id.
			mm := indexedOutputRE.FindStringSubmatch(canonical(params(call)["taskApiIdentityPrincipalId"]))
			services, _ := m.main.find("var", "services").value.strings()
			if mm != nil && mm[1] == "identities" && mm[4] == "principalId" {
				if i, _ := strconv.Atoi(mm[3]); i < len(services) && services[i] == "task" {
					subject = taskIdentityObjectID
				}
			}
		}
		if name := canonical(b.get("name")); !strings.HasPrefix(name, "'${"+app.name+".uniqueName}/") {
			m.errorf("federated credential %s: name %s, want '${%s.uniqueName}/<name>'", fc.name, name, app.name)
		}
		audiences, _ := b.get("audiences").strings()
		dir.FederatedCredentials = append(dir.FederatedCredentials, issuer+" | "+subject+" | "+strings.Join(audiences, ","))
	}
}

func TestAppRegistrationsMatchTheEmulator(t *testing.T) {
	tpl := loadTemplates(t)
	got, problems := readEntra(t, tpl)
	for _, p := range problems {
		t.Error(p)
	}
	want := fromEmulator(entra.DefaultDirectory())
	if len(want.Apps) != len(deployedRegistrations) {
		t.Fatalf("the emulator's directory has %d of the deployed apps, want %d", len(want.Apps), len(deployedRegistrations))
	}
	for _, p := range diffDirectories(want, got) {
		t.Error(p)
	}
}

// TestAppRegistrationsServeTheCode: the scopes and roles registered are
// the ones the services check.
func TestAppRegistrationsServeTheCode(t *testing.T) {
	got, _ := readEntra(t, loadTemplates(t))
	for _, tc := range []struct {
		app          string
		scopes       []string
		roles        []string
		memberTypes  string
		multiTenant  bool
		tokenVersion int
	}{
		{entra.TaskAPIClientID, []string{taskapi.ScopeAccessAsUser}, []string{taskapi.RoleAdmin, taskapi.RoleEditor, taskapi.RoleReader,
			taskapi.RoleOutboxReplay, taskapi.RoleOutboxReplayAll}, "User", true, 2},
		{entra.NotificationClientID, []string{notifyapi.ScopeSend, notifyapi.ScopeRead}, nil, "", true, 2},
		{entra.AuditClientID, nil, []string{auditapi.RoleWrite, auditapi.RoleRead}, "Application", false, 2},
	} {
		r := got.Apps[tc.app]
		var scopes, roles []string
		for _, s := range r.Scopes {
			v, _, _ := strings.Cut(s, ":")
			scopes = append(scopes, v)
		}
		for _, s := range r.Roles {
			v, types, _ := strings.Cut(s, ":")
			roles = append(roles, v)
			if types != tc.memberTypes {
				t.Errorf("%s: role %s is for %s, want %s", r.DisplayName, v, types, tc.memberTypes)
			}
		}
		// Sorted by value: r.Roles are sorted as value:types, and a dotted
		// value (Outbox.Replay.All) sorts apart from its prefix there.
		if !slices.Equal(sorted(scopes), sorted(tc.scopes)) || !slices.Equal(sorted(roles), sorted(tc.roles)) {
			t.Errorf("%s: scopes %q and roles %q, the code checks %q and %q", r.DisplayName, scopes, roles, tc.scopes, tc.roles)
		}
		if (r.SignInAudience == entra.MultiTenant) != tc.multiTenant || r.TokenVersion != tc.tokenVersion || !slices.Contains(r.OptionalClaims, "idtyp") {
			t.Errorf("%s: audience %s, token version %d, optional claims %q", r.DisplayName, r.SignInAudience, r.TokenVersion, r.OptionalClaims)
		}
	}
	// OBO asks for Notify.Send; client credentials need AuditLog.Write.
	if !slices.Contains(got.Grants, entra.TaskAPIClientID+" -> "+entra.NotificationClientID+": "+notifyapi.ScopeRead+" "+notifyapi.ScopeSend) {
		t.Errorf("no admin consent of the Task API to %s and %s: %q", notifyapi.ScopeSend, notifyapi.ScopeRead, got.Grants)
	}
	if !slices.Contains(got.AppPermissions, entra.TaskAPIClientID+" -> "+entra.AuditClientID+": "+auditapi.RoleWrite) {
		t.Errorf("the Task API is not granted %s: %q", auditapi.RoleWrite, got.AppPermissions)
	}
}

// TestDiffDirectoriesReports: each kind of difference is reported.
func TestDiffDirectoriesReports(t *testing.T) {
	want := fromEmulator(entra.DefaultDirectory())
	clone := func() directory {
		d := directory{Apps: maps.Clone(want.Apps), Grants: slices.Clone(want.Grants),
			AppPermissions: slices.Clone(want.AppPermissions), FederatedCredentials: slices.Clone(want.FederatedCredentials)}
		return d
	}
	edit := func(id string, f func(*registration)) func(*directory) {
		return func(d *directory) { r := d.Apps[id]; f(&r); d.Apps[id] = r }
	}
	if p := diffDirectories(want, clone()); len(p) != 0 {
		t.Fatalf("a copy differs: %q", p)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*directory)
		want   string
	}{
		{"missing app", func(d *directory) { delete(d.Apps, entra.SPAClientID) }, "not declared"},
		{"extra app", func(d *directory) { d.Apps["x"] = registration{} }, "declared but not in the emulator"},
		{"single-tenant Task API", edit(entra.TaskAPIClientID, func(r *registration) { r.SignInAudience = entra.SingleTenant }), "SignInAudience"},
		{"missing scope", edit(entra.NotificationClientID, func(r *registration) { r.Scopes = r.Scopes[:1] }), "Scopes"},
		{"role for users", edit(entra.AuditClientID, func(r *registration) { r.Roles = []string{"AuditLog.Read:User", "AuditLog.Write:User"} }), "Roles"},
		{"v1 tokens", edit(entra.AuditClientID, func(r *registration) { r.TokenVersion = 1 }), "TokenVersion"},
		{"no idtyp", edit(entra.TaskAPIClientID, func(r *registration) { r.OptionalClaims = nil }), "OptionalClaims"},
		{"no known client", edit(entra.TaskAPIClientID, func(r *registration) { r.KnownClients = nil }), "KnownClients"},
		{"no Notify.Send request", edit(entra.TaskAPIClientID, func(r *registration) { r.RequiredAccess = r.RequiredAccess[:1] }), "RequiredAccess"},
		{"single-tenant AuditLog.Write requested", edit(entra.TaskAPIClientID, func(r *registration) {
			r.RequiredAccess = append(slices.Clone(r.RequiredAccess), entra.AuditClientID+" Role:AuditLog.Write")
		}), "RequiredAccess"},
		{"audit open to all", edit(entra.AuditClientID, func(r *registration) { r.AssignmentRequired = false }), "AssignmentRequired"},
		{"no consent", func(d *directory) { d.Grants = d.Grants[1:] }, "admin consents"},
		{"no app permission", func(d *directory) { d.AppPermissions = nil }, "application permissions"},
		{"wrong audience", func(d *directory) {
			d.FederatedCredentials = []string{strings.Replace(d.FederatedCredentials[0], entra.TokenExchangeURI, "api://other", 1)}
		}, "federated credentials"},
	} {
		d := clone()
		tc.mutate(&d)
		p := diffDirectories(want, d)
		if len(p) != 1 || !strings.Contains(p[0], tc.want) {
			t.Errorf("%s: problems %q, want one about %s", tc.name, p, tc.want)
		}
	}
}

// TestCrossTenantConsentPaths: consent to a multi-tenant app in another
// tenant provisions each resource it requires there, which only a
// multi-tenant resource can be (a single-tenant one fails the consent with
// AADSTS650052). So every resource a multi-tenant app requires, in Bicep
// and in the emulator, is multi-tenant: the SPA requires the Task API, the
// Task API the Notification Service.
func TestCrossTenantConsentPaths(t *testing.T) {
	got, _ := readEntra(t, loadTemplates(t))
	want := fromEmulator(entra.DefaultDirectory())
	for side, dir := range map[string]directory{"Bicep": got, "the emulator": want} {
		checked := 0
		for _, id := range slices.Sorted(maps.Keys(dir.Apps)) {
			app := dir.Apps[id]
			if app.SignInAudience != entra.MultiTenant {
				continue
			}
			for _, ra := range app.RequiredAccess {
				resource, _, _ := strings.Cut(ra, " ")
				if res, ok := dir.Apps[resource]; !ok || res.SignInAudience != entra.MultiTenant {
					t.Errorf("%s: multi-tenant %s requires %s (%s), which another tenant cannot provision", side, app.DisplayName, ra, res.SignInAudience)
				}
				checked++
			}
		}
		if checked < 3 {
			t.Errorf("%s: %d required permissions of multi-tenant apps checked, want the SPA's and the Task API's (3)", side, checked)
		}
	}
}

// TestAppRoleAssignmentReading: the app role assignment must stay out of
// Bicep and reach the hook through main.bicep's outputs.
func TestAppRoleAssignmentReading(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("modules", "entra.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"a Bicep appRoleAssignedTo", "resource spaSp 'Microsoft.Graph/servicePrincipals@v1.0' = {",
			"resource again 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {\n  principalId: taskApiSp.id\n  resourceId: auditApiSp.id\n  appRoleId: permissionIds.auditWrite\n}\n\nresource spaSp 'Microsoft.Graph/servicePrincipals@v1.0' = {",
			"re-provisioning fails on it"},
		{"no output", "output appRoleAssignment object", "output appRoleAssignmentX object", "no output appRoleAssignment"},
		{"a role of another app", "  appRoleId: permissionIds.auditWrite\n}", "  appRoleId: permissionIds.admin\n}", "is not a role of its resource"},
	} {
		mutated := strings.Replace(string(src), tc.from, tc.to, 1)
		if mutated == string(src) {
			t.Fatalf("%s: %q is not in entra.bicep", tc.name, tc.from)
		}
		tpl := loadTemplates(t)
		f, err := parseBicep(filepath.Join("modules", "entra.bicep"), mutated)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tpl.modules["entra.bicep"] = f
		_, problems := readEntra(t, tpl)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: problems %q, want one about %q", tc.name, problems, tc.want)
		}
	}
	// main.bicep's outputs are the hook's inputs.
	tpl := loadTemplates(t)
	out := tpl.main.find("output", "AUDIT_WRITE_ROLE_ID")
	out.value = &expr{raw: "entra.outputs.auditAppId"}
	if _, problems := readEntra(t, tpl); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "output AUDIT_WRITE_ROLE_ID must be") }) {
		t.Errorf("a wrong AUDIT_WRITE_ROLE_ID output: problems %q", problems)
	}
	// The hook reads exactly those outputs.
	hook, err := os.ReadFile(filepath.Join("hooks", "app-role-assignment.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range hookAssignmentOutputs {
		if !strings.Contains(string(hook), "${"+name+":?") {
			t.Errorf("hooks/app-role-assignment.sh does not require %s", name)
		}
	}
}
