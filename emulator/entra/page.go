package entra

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/handoff-dev/handoff/internal/loopback"
)

// The directory page at the emulator's root: what is in the directory, and
// for each app the configuration to paste into MSAL, azidentity or curl.
// It shows secrets and passwords, so it answers loopback callers that name a
// loopback host only (package loopback); it is read-only, and html/template
// escapes everything the directory says.

type pageData struct {
	BaseURL string
	Tenants []pageTenant
	Apps    []pageApp
}

type pageTenant struct {
	ID, Name, Domain string
	Users            []pageUser
	Consents         []string
}

type pageUser struct {
	Name, Username, OID, Password, Roles string
}

type pageApp struct {
	Name, ClientID, Kind, HomeTenant string
	IdentifierURIs, Scopes, Roles    []string
	RedirectURIs, Secrets            []string
	Snippets                         []pageSnippet
}

type pageSnippet struct{ Title, Code string }

func (s *Server) handleDirectoryPage(w http.ResponseWriter, r *http.Request) {
	if err := loopback.Check(r); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "the directory page answers loopback callers only (it shows secrets): " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = directoryTemplate.Execute(w, s.pageData())
}

func (s *Server) pageData() pageData {
	d := pageData{BaseURL: s.baseStr}
	for _, t := range s.dir.Tenants {
		d.Tenants = append(d.Tenants, s.pageTenant(t))
	}
	for _, a := range s.dir.Applications {
		if !a.FirstParty {
			d.Apps = append(d.Apps, s.pageApp(a))
		}
	}
	return d
}

func (s *Server) pageTenant(t *Tenant) pageTenant {
	pt := pageTenant{ID: t.ID, Name: t.DisplayName, Domain: t.Domain}
	for _, u := range t.Users {
		var roles []string
		for _, ra := range t.AppRoleAssignments {
			if ra.PrincipalType == PrincipalUser && ra.PrincipalID == u.ObjectID {
				roles = append(roles, s.appName(ra.ResourceAppID)+": "+ra.Role)
			}
		}
		pt.Users = append(pt.Users, pageUser{Name: u.Name, Username: u.PreferredUsername, OID: u.ObjectID, Password: u.Password, Roles: strings.Join(roles, ", ")})
	}
	for _, g := range t.ConsentGrants {
		who := "all users (admin consent)"
		if g.Principal != AllPrincipals {
			who = s.userName(t, g.Principal)
		}
		pt.Consents = append(pt.Consents, fmt.Sprintf("%s → %s: %s, for %s", s.appName(g.ClientAppID), s.appName(g.ResourceAppID), strings.Join(g.Scopes, " "), who))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, scopes := range s.consents {
		parts := strings.Fields(key) // client resource oid
		if len(parts) == 3 && t.User(parts[2]) != nil {
			pt.Consents = append(pt.Consents, fmt.Sprintf("%s → %s: %s, for %s (given on the sign-in page)", s.appName(parts[0]), s.appName(parts[1]), strings.Join(scopes, " "), s.userName(t, parts[2])))
		}
	}
	slices.Sort(pt.Consents[len(t.ConsentGrants):])
	return pt
}

func (s *Server) appName(clientID string) string {
	if a := s.dir.Application(clientID); a != nil {
		return a.DisplayName
	}
	if mi := s.dir.ManagedIdentity(clientID); mi != nil && clientID != "" {
		return mi.Name
	}
	return clientID
}

func (s *Server) userName(t *Tenant, oid string) string {
	if u := t.User(oid); u != nil {
		return u.PreferredUsername
	}
	return oid
}

func (s *Server) pageApp(a *Application) pageApp {
	pa := pageApp{Name: a.DisplayName, ClientID: a.ClientID, HomeTenant: a.HomeTenant, IdentifierURIs: a.identifierURIs()}
	switch {
	case len(a.SPARedirectURIs) > 0:
		pa.Kind = "single-page app"
	case a.PublicClient:
		pa.Kind = "public client"
	case len(a.Secrets) > 0 || len(a.Certificates) > 0 || len(a.FederatedCredentials) > 0:
		pa.Kind = "confidential client"
	default:
		pa.Kind = "API"
	}
	for _, sc := range a.Scopes {
		pa.Scopes = append(pa.Scopes, sc.Value)
	}
	for _, r := range a.AppRoles {
		pa.Roles = append(pa.Roles, r.Value+" ("+strings.Join(r.AllowedMemberTypes, ", ")+")")
	}
	for _, u := range a.SPARedirectURIs {
		pa.RedirectURIs = append(pa.RedirectURIs, u+" (SPA)")
	}
	for _, u := range a.WebRedirectURIs {
		pa.RedirectURIs = append(pa.RedirectURIs, u+" (web)")
	}
	for _, u := range a.PublicRedirectURIs {
		pa.RedirectURIs = append(pa.RedirectURIs, u+" (public client)")
	}
	for _, sec := range a.Secrets {
		pa.Secrets = append(pa.Secrets, sec.ID+": "+sec.Value)
	}
	pa.Snippets = s.snippets(a)
	return pa
}

// snippets are the copy-paste configurations for one app: how it gets a
// token with each library, for the first API it declares it needs (or, for
// an API, how to get a token for it).
func (s *Server) snippets(a *Application) []pageSnippet {
	authority := s.Authority(a.HomeTenant)
	scope := s.snippetScope(a)
	var out []pageSnippet
	if scope == "" {
		return []pageSnippet{{"A token for this API, from the command line", "entra-emulator token --user USER --resource " + a.ClientID + "\n# or an app-only token for a client app:\nentra-emulator token --app CLIENT_ID --resource " + a.ClientID}}
	}
	if len(a.SPARedirectURIs) > 0 {
		u, _ := url.Parse(s.baseStr)
		out = append(out, pageSnippet{"msal-browser", fmt.Sprintf(`const msal = new PublicClientApplication({
  auth: {
    clientId: %q,
    authority: %q,
    knownAuthorities: [%q],
    redirectUri: %q,
  },
});
// scopes: [%q]`, a.ClientID, s.Authority("organizations"), u.Host, a.SPARedirectURIs[0], scope)})
	}
	if secret := firstSecret(a); secret != "" {
		out = append(out,
			pageSnippet{"MSAL Go (confidential client)", fmt.Sprintf(`cred, _ := confidential.NewCredFromSecret(%q) // development only
app, _ := confidential.New(%q, %q, cred,
	confidential.WithInstanceDiscovery(false))
res, err := app.AcquireTokenByCredential(ctx, []string{%q})`, secret, authority, a.ClientID, defaultScope(scope))},
			pageSnippet{"azidentity", fmt.Sprintf(`cred, err := azidentity.NewClientSecretCredential(%q, %q, %q,
	&azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: %q}},
		DisableInstanceDiscovery: true,
	})
tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{%q}})`, a.HomeTenant, a.ClientID, secret, s.baseStr+"/", defaultScope(scope))},
			pageSnippet{"curl (client credentials)", fmt.Sprintf(`curl --cacert "$ENTRA_EMULATOR_CA" %s/oauth2/v2.0/token \
  -d grant_type=client_credentials -d client_id=%s \
  -d client_secret=%s --data-urlencode scope=%s`, authority, a.ClientID, secret, defaultScope(scope))})
	}
	if a.PublicClient {
		out = append(out,
			pageSnippet{"MSAL Go (public client, device code)", fmt.Sprintf(`app, _ := public.New(%q, public.WithAuthority(%q),
	public.WithInstanceDiscovery(false))
dc, err := app.AcquireTokenByDeviceCode(ctx, []string{%q})
fmt.Println(dc.Result.Message) // open %s/devicelogin, enter the code
res, err := dc.AuthenticationResult(ctx)`, a.ClientID, authority, scope, s.baseStr)},
			pageSnippet{"azidentity (device code)", fmt.Sprintf(`cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
	TenantID: %q, ClientID: %q,
	ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: %q}},
	DisableInstanceDiscovery: true,
})
tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{%q}})`, a.HomeTenant, a.ClientID, s.baseStr+"/", scope)},
			pageSnippet{"curl (password grant, for scripts)", fmt.Sprintf(`curl --cacert "$ENTRA_EMULATOR_CA" %s/oauth2/v2.0/token \
  -d grant_type=password -d client_id=%s \
  --data-urlencode scope=%s \
  --data-urlencode username=USER --data-urlencode 'password=PASSWORD'`, authority, a.ClientID, scope)})
	}
	return out
}

// snippetScope is a scope the app may ask for, of the first API it
// declares it needs: a confidential client's first API with app roles (as
// .default, for client credentials), else the first delegated scope.
func (s *Server) snippetScope(a *Application) string {
	confidential := len(a.Secrets) > 0 && !a.PublicClient && len(a.SPARedirectURIs) == 0
	var pick *RequiredAccess
	for i, ra := range a.RequiredAccess {
		if s.dir.Application(ra.ResourceAppID) == nil {
			continue
		}
		if pick == nil || (confidential && len(ra.Roles) > 0 && len(pick.Roles) == 0) {
			pick = &a.RequiredAccess[i]
		}
	}
	if pick == nil {
		return ""
	}
	res := s.dir.Application(pick.ResourceAppID)
	prefix := res.ClientID
	if id := res.identifierURIs(); len(id) > 0 {
		prefix = id[0]
	}
	if confidential || len(pick.Scopes) == 0 {
		return prefix + "/.default"
	}
	return prefix + "/" + pick.Scopes[0]
}

func defaultScope(scope string) string {
	i := strings.LastIndex(scope, "/")
	return scope[:i] + "/.default"
}

func firstSecret(a *Application) string {
	if len(a.Secrets) > 0 {
		return a.Secrets[0].Value
	}
	return ""
}

var directoryTemplate = template.Must(template.New("directory").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Directory — handoff Entra emulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
code,pre{font-size:.85rem}pre{background:#f4f4f4;padding:.6rem;overflow:auto;tab-size:4}
.warn{background:#fff4ce;padding:.5rem}.dev{color:#a80000;font-weight:bold}section{margin-bottom:2rem}</style></head>
<body><h1>Entra ID emulator directory</h1>
<p class="warn">Local emulator at <code>{{.BaseURL}}</code>, for development only. Every secret and password on this page is public: never use one elsewhere. This page answers loopback callers only.</p>
<h2>Tenants and users</h2>
{{range .Tenants}}<section id="tenant-{{.ID}}"><h3>{{.Name}} <small><code>{{.ID}}</code> · {{.Domain}}</small></h3>
<table><tr><th>User</th><th>Username</th><th>Object id</th><th>Password <span class="dev">(development only)</span></th><th>App roles</th></tr>
{{range .Users}}<tr><td>{{.Name}}</td><td>{{.Username}}</td><td><code>{{.OID}}</code></td><td><code>{{.Password}}</code></td><td>{{.Roles}}</td></tr>
{{end}}</table>
{{if .Consents}}<p>Consents:</p><ul>{{range .Consents}}<li>{{.}}</li>{{end}}</ul>{{end}}</section>
{{end}}
<h2>Applications</h2>
{{range .Apps}}<section id="app-{{.ClientID}}"><h3>{{.Name}} <small>({{.Kind}})</small></h3>
<table>
<tr><th>Client id</th><td><code>{{.ClientID}}</code></td></tr>
<tr><th>Home tenant</th><td><code>{{.HomeTenant}}</code></td></tr>
{{if .IdentifierURIs}}<tr><th>Identifier URIs</th><td>{{range .IdentifierURIs}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
{{if .Scopes}}<tr><th>Scopes</th><td>{{range .Scopes}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
{{if .Roles}}<tr><th>App roles</th><td>{{range .Roles}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
{{if .RedirectURIs}}<tr><th>Redirect URIs</th><td>{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}
{{if .Secrets}}<tr><th>Secrets <span class="dev">(development only)</span></th><td>{{range .Secrets}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}
</table>
{{range .Snippets}}<p>{{.Title}}:</p><pre>{{.Code}}</pre>
{{end}}</section>
{{end}}</body></html>
`))
