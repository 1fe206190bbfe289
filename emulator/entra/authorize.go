package entra

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// authParams are the authorize request parameters the emulator honours;
// the sign-in form carries them through as hidden fields.
var authParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state",
	"nonce", "code_challenge", "code_challenge_method", "prompt", "login_hint", "client_info"}

const sessionCookie = "handoff_entra_session"

type authCode struct {
	ClientID        string
	RedirectURI     string
	TenantID        string
	UserOID         string
	Scope           string
	Nonce           string
	Challenge       string
	ChallengeMethod string
	SPA             bool
	Public          bool
	AuthTime        int64
	expires         time.Time
	redeemed        bool
}

// authorizeRequest is a validated authorize request.
type authorizeRequest struct {
	ref    tenantRef
	params url.Values
	app    *Application
	spa    bool
	q      scopeRequest
}

// parseAuthorize validates what must hold before anything is redirected:
// the tenant, the client and its redirect URI. Errors before that are shown
// on a page (redirecting to an unregistered URI would be an open redirect);
// errors after it go back to the client.
func (s *Server) parseAuthorize(r *http.Request, params url.Values) (*authorizeRequest, *stsError, bool) {
	ref, e := s.resolveTenant(r.PathValue("tenant"))
	if e != nil {
		return nil, e, false
	}
	app := s.dir.Application(params.Get("client_id"))
	if app == nil || app.FirstParty {
		return nil, errAppNotInTenant(params.Get("client_id"), ref.segment), false
	}
	spa, ok := app.hasRedirect(params.Get("redirect_uri"))
	if !ok {
		return nil, newSTSError(http.StatusBadRequest, "invalid_request", 50011,
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", params.Get("redirect_uri"), app.ClientID), false
	}
	ar := &authorizeRequest{ref: ref, params: params, app: app, spa: spa}
	if rt := params.Get("response_type"); rt != "code" {
		return ar, newSTSError(http.StatusBadRequest, "unsupported_response_type", 700054, "response_type '%s' is not enabled for the application; the emulator supports 'code'.", rt), true
	}
	if m := params.Get("code_challenge_method"); m != "" && m != "S256" && m != "plain" {
		return ar, errInvalidRequest(50049, "Unknown or invalid code_challenge_method '%s'.", m), true
	}
	if ref.tenant != nil && !app.availableIn(ref.tenant) {
		return ar, errAppNotInTenant(app.ClientID, ref.tenant.ID), true
	}
	if ar.q, e = s.parseScopes(params.Get("scope")); e != nil {
		return ar, e, true
	}
	return ar, nil, true
}

func (s *Server) handleAuthorizePage(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointAuthorize)
	ar, e, redirectable := s.parseAuthorize(r, r.URL.Query())
	switch {
	case e != nil && !redirectable:
		s.errorPage(w, e)
		return
	case e != nil:
		s.redirectError(w, r, ar, e)
		return
	}
	if prompt := ar.params.Get("prompt"); prompt == "none" {
		// Silent sign-in (MSAL.js ssoSilent, hidden iframes) rides the session cookie.
		var sess sessionPayload
		c, err := r.Cookie(sessionCookie)
		if err != nil || s.unseal("sess", c.Value, &sess) != nil || !s.now().Before(time.Unix(sess.Expires, 0)) {
			s.redirectError(w, r, ar, newSTSError(http.StatusBadRequest, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."))
			return
		}
		t := s.dir.Tenant(sess.TenantID)
		if t == nil || t.User(sess.UserOID) == nil || (ar.ref.tenant != nil && ar.ref.tenant != t) {
			s.redirectError(w, r, ar, newSTSError(http.StatusBadRequest, "login_required", 50058, "No user of this authority's tenant is signed in."))
			return
		}
		s.completeSignIn(w, r, ar, t, t.User(sess.UserOID), false)
		return
	}
	s.signInPage(w, ar)
}

func (s *Server) handleAuthorizeSubmit(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointAuthorize)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, errInvalidRequest(900144, "The sign-in form is malformed: %v.", err))
		return
	}
	ar, e, redirectable := s.parseAuthorize(r, r.PostForm)
	switch {
	case e != nil && !redirectable:
		s.errorPage(w, e)
		return
	case e != nil:
		s.redirectError(w, r, ar, e)
		return
	}
	t, u, e := s.signInUser(ar.ref, r.PostForm.Get("user"))
	if e != nil {
		s.errorPage(w, e)
		return
	}
	s.completeSignIn(w, r, ar, t, u, true)
}

// signInTenants are the tenants whose users may sign in at ref.
func (s *Server) signInTenants(ref tenantRef) []*Tenant {
	if ref.tenant != nil {
		return []*Tenant{ref.tenant}
	}
	return s.dir.Tenants
}

type sessionPayload struct {
	UserOID  string `json:"uid"`
	TenantID string `json:"tid"`
	Expires  int64  `json:"exp"`
}

// completeSignIn checks the user may use the app, records the consent the
// sign-in implies, issues a code and sends the browser back to the client.
// A silent sign-in (interactive false) records no consent: what is missing
// is answered consent_required, as Entra does.
func (s *Server) completeSignIn(w http.ResponseWriter, r *http.Request, ar *authorizeRequest, t *Tenant, u *User, interactive bool) {
	if !ar.app.availableIn(t) || s.dir.servicePrincipal(t, ar.app) == nil {
		s.redirectError(w, r, ar, errAppNotInTenant(ar.app.ClientID, t.ID))
		return
	}
	q := ar.q
	if q.resource != nil {
		if interactive {
			if e := s.consentOnSignIn(t, ar.app, u, q, ar.params.Get("prompt") == "consent"); e != nil {
				s.redirectError(w, r, ar, e)
				return
			}
		}
		if _, _, e := s.delegated(t, ar.app, u, q); e != nil {
			if e.code == 65001 {
				e.oauth = "consent_required"
			}
			s.redirectError(w, r, ar, e)
			return
		}
	}
	now := s.now()
	code := randomString(48)
	c := &authCode{
		ClientID: ar.app.ClientID, RedirectURI: ar.params.Get("redirect_uri"), TenantID: t.ID, UserOID: u.ObjectID,
		Scope: ar.params.Get("scope"), Nonce: ar.params.Get("nonce"),
		Challenge: ar.params.Get("code_challenge"), ChallengeMethod: ar.params.Get("code_challenge_method"),
		SPA: ar.spa, Public: ar.app.PublicClient || slices.Contains(ar.app.PublicRedirectURIs, ar.params.Get("redirect_uri")),
		AuthTime: now.Unix(), expires: now.Add(codeLifetime),
	}
	s.storeCode(code, c)
	if sess, err := s.seal("sess", sessionPayload{UserOID: u.ObjectID, TenantID: t.ID, Expires: now.Add(12 * time.Hour).Unix()}); err == nil {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	}
	v := url.Values{"code": {code}}
	if st := ar.params.Get("state"); st != "" {
		v.Set("state", st)
	}
	if ar.params.Get("client_info") == "1" {
		v.Set("client_info", clientInfo(u, t))
	}
	v.Set("session_state", derivedID("session", u.ObjectID))
	s.redirect(w, r, ar, v)
}

// consentOnSignIn records the user consent that Entra's consent prompt
// would: the requested scopes (for .default, those the app declares it
// needs), and for apps that list this client among their
// knownClientApplications, their own declared delegated permissions
// (combined consent, so a middle tier can do OBO at once). As in Entra, the
// prompt (and so the recording) happens only when a requested scope is not
// consented yet, or the request says prompt=consent (forced).
func (s *Server) consentOnSignIn(t *Tenant, client *Application, u *User, q scopeRequest, forced bool) *stsError {
	if q.resource.FirstParty {
		return nil
	}
	want := q.values
	if q.isDefault {
		for _, ra := range client.RequiredAccess {
			if ra.ResourceAppID == q.resource.ClientID {
				want = ra.Scopes
			}
		}
	}
	if !forced {
		have := s.consentedScopes(t, client, q.resource, u)
		if !slices.ContainsFunc(want, func(sc string) bool { return !slices.Contains(have, sc) }) {
			return nil // no consent prompt would be shown
		}
	}
	combined := slices.Contains(q.resource.KnownClientApps, client.ClientID)
	if e := s.requiredResourcesIn(t, client, q.resource, combined); e != nil {
		return e
	}
	grants := []*ConsentGrant{{ClientAppID: client.ClientID, ResourceAppID: q.resource.ClientID, Scopes: want, Principal: u.ObjectID}}
	if combined {
		for _, ra := range q.resource.RequiredAccess {
			if len(ra.Scopes) > 0 {
				grants = append(grants, &ConsentGrant{ClientAppID: q.resource.ClientID, ResourceAppID: ra.ResourceAppID, Scopes: ra.Scopes, Principal: u.ObjectID})
			}
		}
	}
	for _, g := range grants {
		res := s.dir.Application(g.ResourceAppID)
		if s.dir.servicePrincipal(t, res) == nil {
			continue // cannot consent to an API not provisioned here; token requests say so
		}
		have := s.consentedScopes(t, s.dir.Application(g.ClientAppID), res, u)
		missing := slices.DeleteFunc(slices.Clone(g.Scopes), func(sc string) bool { return slices.Contains(have, sc) })
		for _, sc := range missing {
			if def := res.scope(sc); def != nil && def.AdminConsentRequired {
				e := errConsentRequired(g.ClientAppID, client.DisplayName, res.ClientID)
				e.oauth = "consent_required"
				return e
			}
		}
		if len(missing) > 0 {
			s.mu.Lock()
			key := g.ClientAppID + " " + g.ResourceAppID + " " + u.ObjectID
			s.consents[key] = append(s.consents[key], missing...)
			s.mu.Unlock()
		}
	}
	return nil
}

// requiredResourcesIn refuses a consent, as Entra does, when an app being
// consented to (the client, and with combined consent the API that names it
// among its knownClientApplications) declares a required resource that can
// have no service principal in t: consent provisions every required
// resource in the consenting tenant, and a single-tenant app outside its
// home tenant cannot be provisioned (AADSTS650052).
func (s *Server) requiredResourcesIn(t *Tenant, client, api *Application, combined bool) *stsError {
	consented := []*Application{client}
	if combined {
		consented = append(consented, api)
	}
	for _, app := range consented {
		for _, ra := range app.RequiredAccess {
			if res := s.dir.Application(ra.ResourceAppID); !s.dir.provisionableIn(t, res) {
				return errNoServicePrincipalForConsent(res, t.ID)
			}
		}
	}
	return nil
}

func errNoServicePrincipalForConsent(res *Application, tenantID string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_client", 650052,
		"The app is trying to access a service '%s'(%s) that your organization '%s' lacks a service principal for. Contact your IT Admin to review the configuration of your service subscriptions or consent to the application in order to create the required service principal.",
		res.ClientID, res.DisplayName, tenantID)
}

// storeCode keeps a code until it expires; beyond maxCodes the oldest go
// first (all codes live codeLifetime, so the oldest expire first).
func (s *Server) storeCode(code string, c *authCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for len(s.codeOrder) > 0 {
		oldest := s.codeOrder[0]
		if old, ok := s.codes[oldest]; ok && now.Before(old.expires) && len(s.codes) < maxCodes {
			break
		}
		delete(s.codes, oldest)
		s.codeOrder = s.codeOrder[1:]
	}
	s.codes[code] = c
	s.codeOrder = append(s.codeOrder, code)
}

// peekCode finds a code without redeeming it.
func (s *Server) peekCode(code string) (*authCode, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	switch {
	case !ok:
		return nil, errCodeInvalid("the code is unknown")
	case c.redeemed:
		return nil, errCodeRedeemed()
	case !s.now().Before(c.expires):
		return nil, errCodeInvalid("the code has expired")
	}
	return c, nil
}

// redeemCode takes a code once, after the request presenting it passed
// its checks (so a wrong client cannot burn another's code); a second
// redemption is AADSTS54005.
func (s *Server) redeemCode(code string) *stsError {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	if !ok || c.redeemed {
		return errCodeRedeemed()
	}
	c.redeemed = true
	return nil
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, ar *authorizeRequest, e *stsError) {
	v := url.Values{
		"error":             {e.oauth},
		"error_description": {e.Error()},
		"error_uri":         {s.baseStr + "/error?code=" + strconv.Itoa(e.code)},
	}
	if e.suberror != "" {
		v.Set("suberror", e.suberror)
	}
	if st := ar.params.Get("state"); st != "" {
		v.Set("state", st)
	}
	s.log.Info("sign-in refused", "client_id", ar.app.ClientID, "error", e.oauth, "code", e.code)
	s.redirect(w, r, ar, v)
}

// redirect returns to the client in the requested response mode.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, ar *authorizeRequest, v url.Values) {
	target := ar.params.Get("redirect_uri")
	switch ar.params.Get("response_mode") {
	case "form_post":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = formPostPage.Execute(w, struct {
			Action string
			Values url.Values
		}{target, v})
	case "fragment":
		http.Redirect(w, r, target+"#"+v.Encode(), http.StatusFound)
	default:
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		http.Redirect(w, r, target+sep+v.Encode(), http.StatusFound)
	}
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	if target := r.URL.Query().Get("post_logout_redirect_uri"); target != "" {
		for _, a := range s.dir.Applications {
			if _, ok := a.hasRedirect(target); ok {
				http.Redirect(w, r, target, http.StatusFound)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = messagePage.Execute(w, struct{ Title, Message string }{"Signed out", "You have signed out of the handoff Entra emulator."})
}

func (s *Server) errorPage(w http.ResponseWriter, e *stsError) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(e.status)
	_ = messagePage.Execute(w, struct{ Title, Message string }{"Sign-in error", e.Error()})
}

type userChoice struct {
	OID, Name, Username, Roles string
}

type tenantChoice struct {
	Name, ID string
	Users    []userChoice
}

func (s *Server) signInPage(w http.ResponseWriter, ar *authorizeRequest) {
	tenants := s.tenantChoices(ar.ref, ar.q)
	var hidden []struct{ Name, Value string }
	for _, p := range authParams {
		if v := ar.params.Get(p); v != "" {
			hidden = append(hidden, struct{ Name, Value string }{p, v})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = signInTemplate.Execute(w, map[string]any{
		"App": ar.app.DisplayName, "Scopes": ar.params.Get("scope"), "Tenants": tenants, "Hidden": hidden,
		"Action": s.baseStr + "/" + ar.ref.segment + "/oauth2/v2.0/authorize",
	})
}

var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — handoff Entra emulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
button{display:block;width:100%;text-align:left;margin:.3rem 0;padding:.6rem;font-size:1rem;cursor:pointer}
small{color:#555}.warn{background:#fff4ce;padding:.5rem}</style></head>
<body><h1>Sign in</h1>
<p class="warn">Local Entra ID emulator, for development only. No password is asked.</p>
<p><strong>{{.App}}</strong> asks for: <code>{{.Scopes}}</code></p>
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{range .Tenants}}<h2>{{.Name}} <small>{{.ID}}</small></h2>
{{range .Users}}<button type="submit" name="user" value="{{.OID}}" data-username="{{.Username}}">{{.Name}} <small>{{.Username}}{{if .Roles}} · {{.Roles}}{{end}}</small></button>
{{end}}{{end}}</form></body></html>
`))

var formPostPage = template.Must(template.New("formpost").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{{.Action}}">
{{range $k, $vs := .Values}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript></form></body></html>
`))

var messagePage = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// signInUser finds the user the sign-in form names among the tenants the
// sign-in reaches, or an AADSTS50034 error.
func (s *Server) signInUser(ref tenantRef, name string) (*Tenant, *User, *stsError) {
	for _, t := range s.signInTenants(ref) {
		if u := t.User(name); u != nil {
			return t, u, nil
		}
	}
	return nil, nil, errInvalidGrant(50034, "The user account '%s' does not exist in the directory of this sign-in.", name)
}

// tenantChoices lists, for the sign-in page, the users of each tenant the
// sign-in reaches, with their roles in the requested resource.
func (s *Server) tenantChoices(ref tenantRef, q scopeRequest) []tenantChoice {
	var tenants []tenantChoice
	for _, t := range s.signInTenants(ref) {
		tc := tenantChoice{Name: t.DisplayName, ID: t.ID}
		for _, u := range t.Users {
			var roles []string
			if q.resource != nil {
				roles = t.rolesOf(PrincipalUser, u.ObjectID, q.resource.ClientID)
			}
			tc.Users = append(tc.Users, userChoice{OID: u.ObjectID, Name: u.Name, Username: u.PreferredUsername, Roles: strings.Join(roles, ", ")})
		}
		tenants = append(tenants, tc)
	}
	return tenants
}
