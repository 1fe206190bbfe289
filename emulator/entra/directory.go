package entra

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Directory is the emulator's whole world: tenants with their users, service
// principals, role assignments and consent grants; app registrations; and
// managed identities. It is read from JSON (see [LoadDirectory]) or taken
// from [DefaultDirectory]. A Directory is immutable once given to [New].
type Directory struct {
	Tenants           []*Tenant          `json:"tenants"`
	Applications      []*Application     `json:"applications"`
	ManagedIdentities []*ManagedIdentity `json:"managed_identities,omitempty"`
	// IdentityHeader is the secret the managed identity endpoint expects in
	// X-IDENTITY-HEADER (App Service's IDENTITY_HEADER).
	IdentityHeader string `json:"identity_header,omitempty"`
}

// Tenant is one Entra directory.
type Tenant struct {
	ID                 string               `json:"id"`
	DisplayName        string               `json:"display_name"`
	Domain             string               `json:"domain"`
	Users              []*User              `json:"users,omitempty"`
	ServicePrincipals  []*ServicePrincipal  `json:"service_principals,omitempty"`
	AppRoleAssignments []*AppRoleAssignment `json:"app_role_assignments,omitempty"`
	ConsentGrants      []*ConsentGrant      `json:"consent_grants,omitempty"`
}

// User is a member of a tenant. Password exists for the password grant in tests.
type User struct {
	ObjectID          string `json:"oid"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Password          string `json:"password"`
}

// ServicePrincipal is an application's instance in a tenant. An app can only
// obtain tokens, or be the resource of one, in tenants where it has one.
type ServicePrincipal struct {
	AppID    string `json:"app_id"`
	ObjectID string `json:"object_id,omitempty"` // derived from tenant and app when empty
	// AppRoleAssignmentRequired blocks users and apps without an assignment (AADSTS50105/501051).
	AppRoleAssignmentRequired bool `json:"app_role_assignment_required,omitempty"`
}

// Principal types of an [AppRoleAssignment].
const (
	PrincipalUser             = "User"
	PrincipalServicePrincipal = "ServicePrincipal"
)

// AppRoleAssignment grants a user (by oid) or an application (by app id, or a
// managed identity by client id) one app role of a resource application.
type AppRoleAssignment struct {
	PrincipalType string `json:"principal_type"`
	PrincipalID   string `json:"principal_id"`
	ResourceAppID string `json:"resource_app_id"`
	Role          string `json:"role"`
}

// AllPrincipals marks an admin consent grant, valid for every user of the tenant.
const AllPrincipals = "AllPrincipals"

// ConsentGrant is an oauth2PermissionGrant: ClientAppID may call ResourceAppID
// with Scopes on behalf of Principal (a user oid, or [AllPrincipals]).
type ConsentGrant struct {
	ClientAppID   string   `json:"client_app_id"`
	ResourceAppID string   `json:"resource_app_id"`
	Scopes        []string `json:"scopes"`
	Principal     string   `json:"principal"`
}

// Sign-in audiences of an [Application].
const (
	SingleTenant = "AzureADMyOrg"
	MultiTenant  = "AzureADMultipleOrgs"
)

// Application is an app registration.
type Application struct {
	ClientID       string `json:"client_id"`
	DisplayName    string `json:"display_name"`
	HomeTenant     string `json:"home_tenant"`
	SignInAudience string `json:"sign_in_audience"`
	// FirstParty apps (Key Vault, the token exchange) have a service principal
	// in every tenant, as Microsoft's own apps do.
	FirstParty           bool                  `json:"first_party,omitempty"`
	Secrets              []Secret              `json:"secrets,omitempty"`
	Certificates         []Certificate         `json:"certificates,omitempty"`
	FederatedCredentials []FederatedCredential `json:"federated_credentials,omitempty"`
	IdentifierURIs       []string              `json:"identifier_uris,omitempty"`
	Scopes               []Scope               `json:"scopes,omitempty"`
	AppRoles             []AppRole             `json:"app_roles,omitempty"`
	RequiredAccess       []RequiredAccess      `json:"required_resource_access,omitempty"`
	KnownClientApps      []string              `json:"known_client_applications,omitempty"`
	SPARedirectURIs      []string              `json:"spa_redirect_uris,omitempty"`
	WebRedirectURIs      []string              `json:"web_redirect_uris,omitempty"`
	PublicRedirectURIs   []string              `json:"public_client_redirect_uris,omitempty"`
	PublicClient         bool                  `json:"public_client,omitempty"`
	AccessTokenVersion   int                   `json:"access_token_version,omitempty"` // 1 or 2; 0 means 1, as in Entra
	OptionalClaims       []string              `json:"optional_claims,omitempty"`      // access token optional claims, e.g. "idtyp"
}

// Secret is a client secret.
type Secret struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Certificate is a public key credential, as a PEM certificate.
type Certificate struct {
	ID  string `json:"id"`
	PEM string `json:"pem"`

	cert *x509.Certificate
}

// FederatedCredential trusts tokens of Issuer about Subject, for one of Audiences.
type FederatedCredential struct {
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

// Scope is a delegated permission the app exposes.
type Scope struct {
	ID    string `json:"id"`
	Value string `json:"value"`
	// AdminConsentRequired scopes cannot be consented to by users on the sign-in page.
	AdminConsentRequired bool `json:"admin_consent_required,omitempty"`
}

// AppRole is a role the app defines, for users, applications or both.
type AppRole struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	AllowedMemberTypes []string `json:"allowed_member_types"` // "User", "Application"
}

// RequiredAccess lists the permissions an app declares it needs of a resource.
type RequiredAccess struct {
	ResourceAppID string   `json:"resource_app_id"`
	Scopes        []string `json:"scopes,omitempty"`
	Roles         []string `json:"roles,omitempty"`
}

// ManagedIdentity is a user-assigned managed identity, served by the
// emulator's managed identity endpoint. Its service principal lives in Tenant.
type ManagedIdentity struct {
	Name     string `json:"name"`
	ClientID string `json:"client_id"`
	ObjectID string `json:"object_id"`
	Tenant   string `json:"tenant"`
	// Default is the identity served when a request names none (the system-assigned one).
	Default bool `json:"default,omitempty"`
}

// LoadDirectory reads a JSON directory (the format of [DirectorySchema])
// and validates it; errors name the key at fault (config.go).
func LoadDirectory(r io.Reader) (*Directory, error) {
	d, err := readConfig(r)
	if err != nil {
		return nil, fmt.Errorf("entra: directory: %w", err)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// IsGUID reports whether s is a lower-case GUID, the form Entra uses in tokens.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

func (d *Directory) validate() error {
	ids := map[string]string{}
	claim := func(kind, id string) error {
		if !IsGUID(id) {
			return fmt.Errorf("entra: directory: %s id %q is not a lower-case GUID", kind, id)
		}
		if prev, ok := ids[id]; ok {
			return fmt.Errorf("entra: directory: id %s used by both %s and %s", id, prev, kind)
		}
		ids[id] = kind
		return nil
	}
	if len(d.Tenants) == 0 {
		return fmt.Errorf("entra: directory: no tenants")
	}
	for _, t := range d.Tenants {
		if err := claim("tenant", t.ID); err != nil {
			return err
		}
		for _, u := range t.Users {
			if err := claim("user "+u.PreferredUsername, u.ObjectID); err != nil {
				return err
			}
			if !strings.Contains(u.PreferredUsername, "@") {
				return fmt.Errorf("entra: directory: user %s: preferred_username %q is not an email-style name", u.ObjectID, u.PreferredUsername)
			}
		}
	}
	for _, a := range d.Applications {
		if err := claim("application "+a.DisplayName, a.ClientID); err != nil {
			return err
		}
		if a.tenantless() {
			continue
		}
		if d.Tenant(a.HomeTenant) == nil {
			return fmt.Errorf("entra: directory: application %s: home tenant %q not found", a.DisplayName, a.HomeTenant)
		}
		if a.SignInAudience != SingleTenant && a.SignInAudience != MultiTenant {
			return fmt.Errorf("entra: directory: application %s: sign_in_audience must be %s or %s", a.DisplayName, SingleTenant, MultiTenant)
		}
		if a.AccessTokenVersion != 0 && a.AccessTokenVersion != 1 && a.AccessTokenVersion != 2 {
			return fmt.Errorf("entra: directory: application %s: access_token_version must be 1 or 2", a.DisplayName)
		}
		for _, ra := range a.RequiredAccess {
			if d.Application(ra.ResourceAppID) == nil {
				return fmt.Errorf("entra: directory: application %s: required_resource_access names unknown app %s", a.DisplayName, ra.ResourceAppID)
			}
		}
		for i := range a.Certificates {
			c := &a.Certificates[i]
			block, _ := pem.Decode([]byte(c.PEM))
			if block == nil || block.Type != "CERTIFICATE" {
				return fmt.Errorf("entra: directory: application %s: certificate %s is not a PEM certificate", a.DisplayName, c.ID)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("entra: directory: application %s: certificate %s: %w", a.DisplayName, c.ID, err)
			}
			c.cert = cert
		}
	}
	for _, mi := range d.ManagedIdentities {
		if err := claim("managed identity "+mi.Name, mi.ClientID); err != nil {
			return err
		}
		if err := claim("managed identity object "+mi.Name, mi.ObjectID); err != nil {
			return err
		}
		if d.Tenant(mi.Tenant) == nil {
			return fmt.Errorf("entra: directory: managed identity %s: tenant %q not found", mi.Name, mi.Tenant)
		}
	}
	for _, t := range d.Tenants {
		for _, sp := range t.ServicePrincipals {
			a := d.Application(sp.AppID)
			if a == nil {
				return fmt.Errorf("entra: directory: tenant %s: service principal for unknown app %s", t.ID, sp.AppID)
			}
			if a.SignInAudience == SingleTenant && a.HomeTenant != t.ID {
				return fmt.Errorf("entra: directory: tenant %s: single-tenant app %s cannot have a service principal outside its home tenant", t.ID, a.DisplayName)
			}
		}
		for _, ra := range t.AppRoleAssignments {
			res := d.Application(ra.ResourceAppID)
			if res == nil {
				return fmt.Errorf("entra: directory: tenant %s: role assignment to unknown app %s", t.ID, ra.ResourceAppID)
			}
			member := "User"
			if ra.PrincipalType == PrincipalServicePrincipal {
				member = "Application"
			} else if ra.PrincipalType != PrincipalUser {
				return fmt.Errorf("entra: directory: tenant %s: principal_type must be %s or %s", t.ID, PrincipalUser, PrincipalServicePrincipal)
			}
			if r := res.appRole(ra.Role); r == nil || !slices.Contains(r.AllowedMemberTypes, member) {
				return fmt.Errorf("entra: directory: tenant %s: app %s has no role %q for %s principals", t.ID, res.DisplayName, ra.Role, member)
			}
		}
		for _, g := range t.ConsentGrants {
			res := d.Application(g.ResourceAppID)
			if res == nil || d.Application(g.ClientAppID) == nil {
				return fmt.Errorf("entra: directory: tenant %s: consent grant names an unknown app", t.ID)
			}
			for _, s := range g.Scopes {
				if res.scope(s) == nil {
					return fmt.Errorf("entra: directory: tenant %s: consent grant for scope %q that %s does not expose", t.ID, s, res.DisplayName)
				}
			}
		}
	}
	return nil
}

// Tenant returns the tenant with the given id or verified domain, or nil.
func (d *Directory) Tenant(idOrDomain string) *Tenant {
	for _, t := range d.Tenants {
		if t.ID == idOrDomain || strings.EqualFold(t.Domain, idOrDomain) {
			return t
		}
	}
	return nil
}

// Application returns the app registration with the given client id, or nil.
func (d *Directory) Application(clientID string) *Application {
	for _, a := range d.Applications {
		if a.ClientID == clientID {
			return a
		}
	}
	return nil
}

// ManagedIdentity returns the managed identity with the client id, or the
// default one when clientID is empty; nil when there is none.
func (d *Directory) ManagedIdentity(clientID string) *ManagedIdentity {
	for _, mi := range d.ManagedIdentities {
		if (clientID == "" && mi.Default) || (clientID != "" && mi.ClientID == clientID) {
			return mi
		}
	}
	return nil
}

// resourceByIdentifier finds the app a scope's resource part names: its client
// id or one of its identifier URIs.
func (d *Directory) resourceByIdentifier(id string) *Application {
	for _, a := range d.Applications {
		if a.ClientID == id || slices.Contains(a.identifierURIs(), id) {
			return a
		}
	}
	return nil
}

// User returns the tenant's user with the given oid or username.
func (t *Tenant) User(oidOrName string) *User {
	for _, u := range t.Users {
		if u.ObjectID == oidOrName || strings.EqualFold(u.PreferredUsername, oidOrName) {
			return u
		}
	}
	return nil
}

// servicePrincipal returns the app's service principal in t, or nil.
func (d *Directory) servicePrincipal(t *Tenant, a *Application) *ServicePrincipal {
	if a.FirstParty {
		return &ServicePrincipal{AppID: a.ClientID, ObjectID: derivedID(t.ID, a.ClientID)}
	}
	for _, sp := range t.ServicePrincipals {
		if sp.AppID == a.ClientID {
			if sp.ObjectID == "" {
				return &ServicePrincipal{AppID: sp.AppID, ObjectID: derivedID(t.ID, a.ClientID), AppRoleAssignmentRequired: sp.AppRoleAssignmentRequired}
			}
			return sp
		}
	}
	return nil
}

// provisionableIn reports whether a has, or consent in t would give it, a
// service principal there: Entra creates one for a multi-tenant app (and
// Microsoft's own apps have one everywhere), but a single-tenant app has none
// outside its home tenant.
func (d *Directory) provisionableIn(t *Tenant, a *Application) bool {
	return d.servicePrincipal(t, a) != nil || a.SignInAudience == MultiTenant
}

// ServicePrincipalObjectID is the object id of the app's service principal in
// the tenant (the oid of its app-only tokens), or "" when it has none.
func (d *Directory) ServicePrincipalObjectID(tenantID, clientID string) string {
	t, a := d.Tenant(tenantID), d.Application(clientID)
	if t == nil || a == nil {
		return ""
	}
	if sp := d.servicePrincipal(t, a); sp != nil {
		return sp.ObjectID
	}
	return ""
}

// rolesOf lists the roles principal (user oid or app/MI client id) holds on resource in t.
func (t *Tenant) rolesOf(principalType, principalID, resourceAppID string) []string {
	var roles []string
	for _, ra := range t.AppRoleAssignments {
		if ra.PrincipalType == principalType && ra.PrincipalID == principalID && ra.ResourceAppID == resourceAppID && !slices.Contains(roles, ra.Role) {
			roles = append(roles, ra.Role)
		}
	}
	return roles
}

// consentedScopes lists the scopes of resource that client may use for user in t.
func (t *Tenant) consentedScopes(clientAppID, resourceAppID, userOID string) []string {
	var scopes []string
	for _, g := range t.ConsentGrants {
		if g.ClientAppID != clientAppID || g.ResourceAppID != resourceAppID {
			continue
		}
		if g.Principal != AllPrincipals && g.Principal != userOID {
			continue
		}
		for _, s := range g.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes
}

func (a *Application) tenantless() bool { return a.FirstParty }

func (a *Application) identifierURIs() []string {
	if len(a.IdentifierURIs) > 0 {
		return a.IdentifierURIs
	}
	if a.FirstParty {
		return nil
	}
	return []string{"api://" + a.ClientID}
}

func (a *Application) scope(value string) *Scope {
	for i := range a.Scopes {
		if a.Scopes[i].Value == value {
			return &a.Scopes[i]
		}
	}
	return nil
}

func (a *Application) appRole(value string) *AppRole {
	for i := range a.AppRoles {
		if a.AppRoles[i].Value == value {
			return &a.AppRoles[i]
		}
	}
	return nil
}

func (a *Application) tokenVersion() int {
	if a.AccessTokenVersion == 2 {
		return 2
	}
	return 1
}

// availableIn reports whether users of t may sign in to a, and a may act in t.
func (a *Application) availableIn(t *Tenant) bool {
	return a.FirstParty || a.HomeTenant == t.ID || a.SignInAudience == MultiTenant
}

func (a *Application) hasRedirect(uri string) (spa, ok bool) {
	switch {
	case slices.Contains(a.SPARedirectURIs, uri):
		return true, true
	case slices.Contains(a.WebRedirectURIs, uri), slices.Contains(a.PublicRedirectURIs, uri):
		return false, true
	case slices.ContainsFunc(a.PublicRedirectURIs, func(r string) bool { return loopbackAnyPort(r, uri) }):
		return false, true
	}
	return false, false
}

// loopbackAnyPort reports whether uri is the registered loopback redirect
// with some port: native apps listen on a port of their choosing (RFC 8252
// section 7.3), and Entra ignores the port of http://localhost redirects.
func loopbackAnyPort(registered, uri string) bool {
	r, err1 := url.Parse(registered)
	u, err2 := url.Parse(uri)
	if err1 != nil || err2 != nil || r.Scheme != "http" || u.Scheme != "http" || r.Port() != "" {
		return false
	}
	loopback := r.Hostname() == "localhost" || r.Hostname() == "127.0.0.1"
	return loopback && u.Hostname() == r.Hostname() && strings.TrimSuffix(u.Path, "/") == strings.TrimSuffix(r.Path, "/")
}

// derivedID makes a stable GUID-shaped id from parts, for service principals
// and pairwise subjects that the configuration does not name.
func derivedID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	h[6] = (h[6] & 0x0f) | 0x50 // version 5 style
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
