package entra

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// DirectorySchema is the JSON Schema (draft 2020-12) of the -config file,
// the format [LoadDirectory] reads and -print-config writes.
//
//go:embed directory.schema.json
var DirectorySchema []byte

// MaxConfigBytes bounds a directory file.
const MaxConfigBytes = 4 << 20

// readConfig reads a directory file, naming the key of every error: JSON
// that is no object of the format, unknown fields, and references that do
// not resolve (the checks of [Directory.checkReferences]).
func readConfig(r io.Reader) (*Directory, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("the file is larger than %d bytes", MaxConfigBytes)
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if err := unknownFields(raw, reflect.TypeFor[Directory](), ""); err != nil {
		return nil, err
	}
	var d Directory
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if err := d.checkReferences(); err != nil {
		return nil, err
	}
	return &d, nil
}

// unknownFields finds the first key of v that t has no field for, and names
// its path (tenants[0].users[1]).
func unknownFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, which decoding reports
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				where := path
				if where == "" {
					where = "the top level"
				}
				return fmt.Errorf("%s: unknown field %q", where, k)
			}
			if err := unknownFields(m[k], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		items, _ := v.([]any)
		for i, item := range items {
			if err := unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkReferences checks what the schema cannot: that ids are unique and
// every reference resolves. Each error names the key (a JSON path) and the
// reason. [Directory.validate] checks the rest (GUIDs, certificates).
func (d *Directory) checkReferences() error {
	if err := d.checkApplications(); err != nil {
		return err
	}
	for i, t := range d.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		for j, prev := range d.Tenants[:i] {
			if t.ID == prev.ID || (t.Domain != "" && strings.EqualFold(t.Domain, prev.Domain)) {
				return fmt.Errorf("%s: id or domain of tenants[%d] again", p, j)
			}
		}
		if err := d.checkTenant(p, t); err != nil {
			return err
		}
	}
	defaults := 0
	for i, mi := range d.ManagedIdentities {
		if d.Tenant(mi.Tenant) == nil {
			return fmt.Errorf("managed_identities[%d].tenant: %q is no tenant of the directory", i, mi.Tenant)
		}
		if mi.Default {
			if defaults++; defaults > 1 {
				return fmt.Errorf("managed_identities[%d].default: only one managed identity can be the default", i)
			}
		}
	}
	return nil
}

func (d *Directory) checkApplications() error {
	seen := map[string]int{}
	for i, a := range d.Applications {
		p := fmt.Sprintf("applications[%d]", i)
		if j, ok := seen[a.ClientID]; ok {
			return fmt.Errorf("%s.client_id: %q is already the client id of applications[%d] (%s)", p, a.ClientID, j, d.Applications[j].DisplayName)
		}
		seen[a.ClientID] = i
	}
	for i, a := range d.Applications {
		p := fmt.Sprintf("applications[%d]", i)
		if !a.FirstParty && d.Tenant(a.HomeTenant) == nil {
			return fmt.Errorf("%s.home_tenant: %q is no tenant of the directory", p, a.HomeTenant)
		}
		for j, sc := range a.Scopes {
			if a.scope(sc.Value) != &a.Scopes[j] {
				return fmt.Errorf("%s.scopes[%d].value: %q is defined twice", p, j, sc.Value)
			}
		}
		for j, r := range a.AppRoles {
			if a.appRole(r.Value) != &a.AppRoles[j] {
				return fmt.Errorf("%s.app_roles[%d].value: %q is defined twice", p, j, r.Value)
			}
			for _, m := range r.AllowedMemberTypes {
				if m != "User" && m != "Application" {
					return fmt.Errorf("%s.app_roles[%d].allowed_member_types: %q is neither User nor Application", p, j, m)
				}
			}
		}
		for j, ra := range a.RequiredAccess {
			if d.Application(ra.ResourceAppID) == nil {
				return fmt.Errorf("%s.required_resource_access[%d].resource_app_id: %q is no application of the directory", p, j, ra.ResourceAppID)
			}
		}
	}
	return nil
}

func (d *Directory) checkTenant(p string, t *Tenant) error {
	for i, u := range t.Users {
		for j, prev := range t.Users[:i] {
			if strings.EqualFold(u.PreferredUsername, prev.PreferredUsername) {
				return fmt.Errorf("%s.users[%d].preferred_username: %q is already users[%d]'s", p, i, u.PreferredUsername, j)
			}
		}
	}
	for i, sp := range t.ServicePrincipals {
		if d.Application(sp.AppID) == nil {
			return fmt.Errorf("%s.service_principals[%d].app_id: %q is no application of the directory", p, i, sp.AppID)
		}
	}
	for i, ra := range t.AppRoleAssignments {
		if err := d.checkAssignment(t, ra); err != nil {
			return fmt.Errorf("%s.app_role_assignments[%d].%w", p, i, err)
		}
	}
	for i, g := range t.ConsentGrants {
		if err := d.checkConsent(t, g); err != nil {
			return fmt.Errorf("%s.consent_grants[%d].%w", p, i, err)
		}
	}
	return nil
}

func (d *Directory) checkAssignment(t *Tenant, ra *AppRoleAssignment) error {
	res := d.Application(ra.ResourceAppID)
	if res == nil {
		return fmt.Errorf("resource_app_id: %q is no application of the directory", ra.ResourceAppID)
	}
	member := "User"
	switch ra.PrincipalType {
	case PrincipalUser:
		if t.User(ra.PrincipalID) == nil || t.User(ra.PrincipalID).ObjectID != ra.PrincipalID {
			return fmt.Errorf("principal_id: %q is no user's oid in this tenant", ra.PrincipalID)
		}
	case PrincipalServicePrincipal:
		member = "Application"
		if d.Application(ra.PrincipalID) == nil && d.ManagedIdentity(ra.PrincipalID) == nil {
			return fmt.Errorf("principal_id: %q is no application or managed identity client id", ra.PrincipalID)
		}
	default:
		return fmt.Errorf("principal_type: %q is neither %s nor %s", ra.PrincipalType, PrincipalUser, PrincipalServicePrincipal)
	}
	r := res.appRole(ra.Role)
	if r == nil {
		var defined []string
		for _, ar := range res.AppRoles {
			defined = append(defined, ar.Value)
		}
		return fmt.Errorf("role: %s defines no app role %q (it defines %s)", res.DisplayName, ra.Role, orNone(defined))
	}
	if !slices.Contains(r.AllowedMemberTypes, member) {
		return fmt.Errorf("role: %s's role %q is not for %s principals (allowed_member_types %v)", res.DisplayName, ra.Role, member, r.AllowedMemberTypes)
	}
	return nil
}

func (d *Directory) checkConsent(t *Tenant, g *ConsentGrant) error {
	if d.Application(g.ClientAppID) == nil {
		return fmt.Errorf("client_app_id: %q is no application of the directory", g.ClientAppID)
	}
	res := d.Application(g.ResourceAppID)
	if res == nil {
		return fmt.Errorf("resource_app_id: %q is no application of the directory", g.ResourceAppID)
	}
	if g.Principal != AllPrincipals {
		if u := t.User(g.Principal); u == nil || u.ObjectID != g.Principal {
			return fmt.Errorf("principal: %q is neither %s nor a user's oid in this tenant", g.Principal, AllPrincipals)
		}
	}
	if len(g.Scopes) == 0 {
		return errors.New("scopes: a consent grants at least one scope")
	}
	for _, s := range g.Scopes {
		if res.scope(s) == nil {
			var exposed []string
			for _, sc := range res.Scopes {
				exposed = append(exposed, sc.Value)
			}
			return fmt.Errorf("scopes: %s exposes no scope %q (it exposes %s)", res.DisplayName, s, orNone(exposed))
		}
	}
	return nil
}

func orNone(values []string) string {
	if len(values) == 0 {
		return "none"
	}
	return strings.Join(values, ", ")
}
