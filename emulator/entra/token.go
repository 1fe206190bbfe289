package entra

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	grantTypeJWTBearer       = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	clientAssertionJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

// tokenRequest is one POST to the token endpoint, parsed.
type tokenRequest struct {
	r     *http.Request
	form  url.Values
	ref   tenantRef
	grant string
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointToken)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.writeSTSError(w, r, errInvalidRequest(900144, "The request body must be a form of at most %d bytes: %v.", maxFormBytes, err))
		return
	}
	req := &tokenRequest{r: r, form: r.PostForm, grant: grantName(r.PostForm)}
	s.countGrant(req.grant, r.PathValue("tenant"))
	s.tokenDelay(r.Context())
	if s.takeFailure(EndpointToken, req.grant) {
		s.writeSTSError(w, r, errTemporarilyUnavailable())
		return
	}
	var e *stsError
	if req.ref, e = s.resolveTenant(r.PathValue("tenant")); e != nil {
		s.writeSTSError(w, r, e)
		return
	}
	var resp *tokenResponse
	switch req.grant {
	case GrantClientCredentials:
		resp, e = s.clientCredentials(req)
	case GrantOnBehalfOf:
		resp, e = s.onBehalfOf(req)
	case GrantPassword:
		resp, e = s.password(req)
	case GrantAuthorizationCode:
		resp, e = s.authorizationCode(req)
	case GrantRefreshToken:
		resp, e = s.refreshToken(req)
	case GrantDeviceCode:
		resp, e = s.deviceCodeGrant(req)
	default:
		e = errUnsupportedGrant(req.form.Get("grant_type"))
	}
	if e != nil {
		s.writeSTSError(w, r, e)
		return
	}
	s.countIssued(req.grant)
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func grantName(form url.Values) string {
	g := form.Get("grant_type")
	if g == grantTypeJWTBearer && form.Get("requested_token_use") == "on_behalf_of" {
		return GrantOnBehalfOf
	}
	if g == grantTypeDeviceCode {
		return GrantDeviceCode
	}
	return g
}

// authenticateClient identifies the calling app and checks its credential:
// a secret (form or Basic), a certificate assertion, or a federated
// assertion. An app that sends no credential authenticates as a public
// client (acrPublic); each grant decides whether that is enough.
func (s *Server) authenticateClient(req *tokenRequest) (*Application, string, *stsError) {
	clientID, secret := req.form.Get("client_id"), req.form.Get("client_secret")
	if u, p, ok := req.r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	if clientID == "" {
		return nil, "", errInvalidRequest(900144, "The request body must contain the following parameter: 'client_id'.")
	}
	app := s.dir.Application(clientID)
	if app == nil || app.FirstParty {
		return nil, "", errAppNotInTenant(clientID, req.ref.segment)
	}
	assertion := req.form.Get("client_assertion")
	switch {
	case secret != "":
		for _, sec := range app.Secrets {
			if subtle.ConstantTimeCompare([]byte(sec.Value), []byte(secret)) == 1 {
				s.countCredential(app.ClientID + "/secret/" + sec.ID)
				return app, acrSecret, nil
			}
		}
		return nil, "", errInvalidSecret(clientID)
	case assertion != "":
		if req.form.Get("client_assertion_type") != clientAssertionJWTBearer {
			return nil, "", errInvalidRequest(900144, "client_assertion_type must be '%s'.", clientAssertionJWTBearer)
		}
		used, e := s.verifyClientAssertion(app, assertion, req.ref)
		if e != nil {
			return nil, "", e
		}
		s.countCredential(app.ClientID + "/" + used)
		return app, acrCert, nil
	}
	return app, acrPublic, nil
}

// clientCredentials issues an app-only token: the client's roles on the
// resource, no user, no scp. The tenant must be named.
func (s *Server) clientCredentials(req *tokenRequest) (*tokenResponse, *stsError) {
	t := req.ref.tenant
	if t == nil {
		return nil, errTenantRequired("client credentials")
	}
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if acr == acrPublic {
		return nil, errMissingCredential()
	}
	sp := s.dir.servicePrincipal(t, app)
	if sp == nil {
		return nil, errAppNotInTenant(app.ClientID, t.ID)
	}
	// Checked before the scopes are resolved, as Entra does: a role name
	// as a scope ("api://audit/AuditLog.Write") is the classic mistake.
	for _, sc := range strings.Fields(req.form.Get("scope")) {
		if !slices.Contains(oidcScopes, strings.ToLower(sc)) && !strings.HasSuffix(sc, "/.default") {
			return nil, errClientCredentialsScope(sc)
		}
	}
	q, e := s.parseScopes(req.form.Get("scope"))
	if e != nil {
		return nil, e
	}
	if q.resource == nil {
		return nil, errClientCredentialsScope(req.form.Get("scope"))
	}
	resSP := s.dir.servicePrincipal(t, q.resource)
	if resSP == nil {
		return nil, errResourceNotFound(q.resourceAs, t.ID)
	}
	roles := t.rolesOf(PrincipalServicePrincipal, app.ClientID, q.resource.ClientID)
	if resSP.AppRoleAssignmentRequired && len(roles) == 0 {
		return nil, errAppNotAssigned(q.resource.DisplayName)
	}
	tok, exp, err := s.accessToken(issue{
		tenant: t, client: principal{appID: app.ClientID, objectID: sp.ObjectID}, acr: acr,
		resource: q.resource, resourceAs: q.resourceAs, roles: roles,
	})
	if err != nil {
		return nil, errInternal(err)
	}
	// No client_info and no id_token: there is no user, and MSAL would file
	// the token under an account and never find it in its app cache again.
	return s.response(tok, exp, q.resourceAs+"/.default"), nil
}

// onBehalfOf exchanges a user's access token to the calling app (the
// assertion) for a token to another resource, keeping the user's identity.
func (s *Server) onBehalfOf(req *tokenRequest) (*tokenResponse, *stsError) {
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if acr == acrPublic {
		return nil, errMissingCredential()
	}
	raw := req.form.Get("assertion")
	if raw == "" {
		return nil, errInvalidRequest(900144, "The request body must contain the following parameter: 'assertion'.")
	}
	a, err := parseJWT(raw)
	if err != nil {
		return nil, errAssertionMalformed(err.Error())
	}
	key := s.keys.lookup(a.header.Kid)
	if key == nil || a.header.Alg != "RS256" || a.verify(&key.key.PublicKey) != nil {
		return nil, errAssertionSignature()
	}
	tid := a.str("tid")
	at := s.dir.Tenant(tid)
	if at == nil || at.ID != tid {
		return nil, errAssertionMalformed("its tid names no tenant of this emulator")
	}
	if iss := a.str("iss"); iss != s.Issuer(tid) && iss != s.IssuerV1(tid) {
		return nil, errAssertionMalformed("its issuer is not this emulator's issuer for its tenant")
	}
	now := s.now()
	exp, ok := a.unix("exp")
	if !ok {
		return nil, errAssertionMalformed("it has no exp")
	}
	if !now.Before(time.Unix(exp, 0)) {
		return nil, errAssertionExpired(time.Unix(exp, 0), now)
	}
	if nbf, ok := a.unix("nbf"); ok && time.Unix(nbf, 0).After(now.Add(clockSkew)) {
		return nil, errAssertionExpired(time.Unix(exp, 0), now)
	}
	if !slices.ContainsFunc(a.audiences(), func(aud string) bool {
		return aud == app.ClientID || slices.Contains(app.identifierURIs(), aud)
	}) {
		return nil, errAssertionAudience(app.ClientID)
	}
	if a.str("idtyp") == "app" || a.str("scp") == "" {
		return nil, errOBOAppOnly(app.ClientID)
	}
	t := req.ref.tenant
	if t == nil {
		t = at // Entra runs OBO at common/organizations in the user's tenant
	}
	user := t.User(a.str("oid"))
	if t.ID != tid || user == nil {
		return nil, errUserNotInTenant(a.str("oid"), t.ID)
	}
	if s.dir.servicePrincipal(t, app) == nil {
		return nil, errAppNotInTenant(app.ClientID, t.ID)
	}
	q, e := s.parseScopes(req.form.Get("scope"))
	if e != nil {
		return nil, e
	}
	if q.resource == nil {
		return nil, errInvalidScope(req.form.Get("scope"), "On-Behalf-Of needs a scope of the downstream API.")
	}
	return s.userToken(req, userGrant{tenant: t, user: user, app: app, acr: acr, q: q, authTime: now})
}

// password is the resource owner password grant, for public clients.
func (s *Server) password(req *tokenRequest) (*tokenResponse, *stsError) {
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if acr == acrPublic && !app.PublicClient {
		return nil, errMissingCredential()
	}
	t, user := s.findUser(req.ref, req.form.Get("username"))
	if user == nil || subtle.ConstantTimeCompare([]byte(user.Password), []byte(req.form.Get("password"))) != 1 {
		return nil, errInvalidGrant(50126, "Error validating credentials due to invalid username or password.")
	}
	if !app.availableIn(t) || s.dir.servicePrincipal(t, app) == nil {
		return nil, errAppNotInTenant(app.ClientID, t.ID)
	}
	q, e := s.parseScopes(req.form.Get("scope"))
	if e != nil {
		return nil, e
	}
	return s.userToken(req, userGrant{tenant: t, user: user, app: app, acr: acr, q: q, authTime: s.now(), public: true})
}

// findUser looks a username up in the named tenant, or in every tenant for
// organizations/common.
func (s *Server) findUser(ref tenantRef, username string) (*Tenant, *User) {
	if ref.tenant != nil {
		return ref.tenant, ref.tenant.User(username)
	}
	for _, t := range s.dir.Tenants {
		if u := t.User(username); u != nil && u.PreferredUsername != "" {
			return t, u
		}
	}
	return nil, nil
}

// authorizationCode redeems a code from the sign-in page, with PKCE and the
// SPA origin rules.
func (s *Server) authorizationCode(req *tokenRequest) (*tokenResponse, *stsError) {
	c, e := s.peekCode(req.form.Get("code"))
	if e != nil {
		return nil, e
	}
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if app.ClientID != c.ClientID {
		return nil, errCodeInvalid("the code was issued to another client")
	}
	if req.form.Get("redirect_uri") != c.RedirectURI {
		return nil, errInvalidGrant(50011, "The redirect URI '%s' does not match the redirect URI '%s' of the authorization request.", req.form.Get("redirect_uri"), c.RedirectURI)
	}
	if e := checkOrigin(req.r, c.SPA); e != nil {
		return nil, e
	}
	if !c.SPA && !c.Public && acr == acrPublic {
		return nil, errMissingCredential()
	}
	switch {
	case c.Challenge != "":
		if !pkceMatches(c.Challenge, c.ChallengeMethod, req.form.Get("code_verifier")) {
			return nil, errPKCEMismatch()
		}
	case c.SPA:
		return nil, errInvalidRequest(9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
	}
	if req.ref.tenant != nil && req.ref.tenant.ID != c.TenantID {
		return nil, errUserNotInTenant(c.UserOID, req.ref.tenant.ID)
	}
	if e := s.redeemCode(req.form.Get("code")); e != nil {
		return nil, e
	}
	t := s.dir.Tenant(c.TenantID)
	user := t.User(c.UserOID)
	scope := req.form.Get("scope")
	if scope == "" {
		scope = c.Scope
	}
	q, e := s.parseScopes(scope)
	if e != nil {
		return nil, e
	}
	return s.userToken(req, userGrant{tenant: t, user: user, app: app, acr: acr, q: q, nonce: c.Nonce,
		authTime: time.Unix(c.AuthTime, 0), spa: c.SPA, public: c.Public})
}

// refreshToken redeems a refresh token for any resource the user and client may use.
func (s *Server) refreshToken(req *tokenRequest) (*tokenResponse, *stsError) {
	var rt refreshPayload
	if err := s.unseal("rt", req.form.Get("refresh_token"), &rt); err != nil {
		return nil, errCodeInvalid("the refresh token is malformed or was not issued by this emulator")
	}
	if !s.now().Before(time.Unix(rt.Expires, 0)) {
		return nil, errInvalidGrant(700082, "The refresh token has expired due to inactivity or its maximum lifetime.")
	}
	if e := s.refusedRefresh(); e != nil {
		return nil, e
	}
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if app.ClientID != rt.ClientID {
		return nil, errInvalidGrant(70000, "The provided value for the 'refresh_token' is not valid: it was issued to another client.")
	}
	if e := checkOrigin(req.r, rt.SPA); e != nil {
		return nil, e
	}
	if !rt.SPA && !rt.Public && acr == acrPublic {
		return nil, errMissingCredential()
	}
	t := s.dir.Tenant(rt.TenantID)
	if req.ref.tenant != nil && req.ref.tenant != t {
		return nil, errUserNotInTenant(rt.UserOID, req.ref.tenant.ID)
	}
	user := t.User(rt.UserOID)
	q, e := s.parseScopes(req.form.Get("scope"))
	if e != nil {
		return nil, e
	}
	return s.userToken(req, userGrant{tenant: t, user: user, app: app, acr: acr, q: q,
		authTime: time.Unix(rt.AuthTime, 0), spa: rt.SPA, public: rt.Public, rtExpires: rt.Expires})
}

// checkOrigin applies Entra's SPA rules: SPA codes and refresh tokens are
// redeemed cross-origin only, and only they may be.
func checkOrigin(r *http.Request, spa bool) *stsError {
	origin := r.Header.Get("Origin") != ""
	switch {
	case spa && !origin:
		return errSPANeedsOrigin()
	case !spa && origin:
		return errCrossOriginNotSPA()
	}
	return nil
}

// userGrant is a delegated token request that has passed its grant's checks.
type userGrant struct {
	tenant    *Tenant
	user      *User
	app       *Application
	acr       string
	q         scopeRequest
	nonce     string
	authTime  time.Time
	spa       bool  // issued through a SPA redirect URI: 24 h refresh tokens, origin bound
	public    bool  // issued to a public client: refresh needs no credential
	rtExpires int64 // keep a SPA refresh token's absolute expiry across refreshes
}

type refreshPayload struct {
	UserOID  string `json:"uid"`
	TenantID string `json:"tid"`
	ClientID string `json:"cid"`
	SPA      bool   `json:"spa,omitempty"`
	Public   bool   `json:"pub,omitempty"`
	AuthTime int64  `json:"at"`
	Expires  int64  `json:"exp"`
	Nonce    string `json:"n"` // makes every refresh token distinct
}

// userToken finishes every user flow: consent and assignment checks, the
// access token, and the ID token, refresh token and client_info MSAL expects.
func (s *Server) userToken(req *tokenRequest, g userGrant) (*tokenResponse, *stsError) {
	if g.q.resource == nil {
		// Sign-in only (openid profile): Entra issues a Graph token.
		g.q.resource, g.q.resourceAs, g.q.values = s.dir.Application(graphAppID), graphAppID, []string{"User.Read"}
	}
	scopes, roles, e := s.delegated(g.tenant, g.app, g.user, g.q)
	if e != nil {
		return nil, e
	}
	tok, exp, err := s.accessToken(issue{
		tenant: g.tenant, client: principal{appID: g.app.ClientID}, acr: g.acr, user: g.user,
		resource: g.q.resource, resourceAs: g.q.resourceAs, scopes: scopes, roles: roles, authTime: g.authTime,
	})
	if err != nil {
		return nil, errInternal(err)
	}
	resp := s.response(tok, exp, g.q.grantedScopeString(scopes))
	if g.q.has("openid") {
		if resp.IDToken, err = s.idToken(g.tenant, g.user, g.app.ClientID, g.nonce); err != nil {
			return nil, errInternal(err)
		}
	}
	if g.q.has("offline_access") {
		rt := refreshPayload{UserOID: g.user.ObjectID, TenantID: g.tenant.ID, ClientID: g.app.ClientID,
			SPA: g.spa, Public: g.public, AuthTime: g.authTime.Unix(), Nonce: randomString(8)}
		switch {
		case g.spa && g.rtExpires != 0:
			rt.Expires = g.rtExpires
		case g.spa:
			rt.Expires = s.now().Add(spaRTLifetime).Unix()
		default:
			rt.Expires = s.now().Add(rtLifetime).Unix()
		}
		if resp.RefreshToken, err = s.seal("rt", rt); err != nil {
			return nil, errInternal(err)
		}
	}
	if req.form.Get("client_info") == "1" {
		resp.ClientInfo = clientInfo(g.user, g.tenant)
	}
	return resp, nil
}

// delegated decides what a delegated token to q.resource carries for user
// through client in t: the consented scopes and the user's app roles.
func (s *Server) delegated(t *Tenant, client *Application, user *User, q scopeRequest) (scopes, roles []string, e *stsError) {
	res := q.resource
	resSP := s.dir.servicePrincipal(t, res)
	if resSP == nil {
		return nil, nil, errResourceNotFound(q.resourceAs, t.ID)
	}
	if s.dir.servicePrincipal(t, client) == nil {
		return nil, nil, errAppNotInTenant(client.ClientID, t.ID)
	}
	roles = t.rolesOf(PrincipalUser, user.ObjectID, res.ClientID)
	if resSP.AppRoleAssignmentRequired && len(roles) == 0 {
		return nil, nil, errUserNotAssigned(res.ClientID, res.DisplayName)
	}
	consented := s.consentedScopes(t, client, res, user)
	if q.isDefault {
		for _, sc := range res.Scopes {
			if slices.Contains(consented, sc.Value) {
				scopes = append(scopes, sc.Value)
			}
		}
		if len(scopes) == 0 {
			return nil, nil, errConsentRequired(client.ClientID, client.DisplayName, res.ClientID)
		}
		return scopes, roles, nil
	}
	for _, v := range q.values {
		if !slices.Contains(consented, v) {
			return nil, nil, errConsentRequired(client.ClientID, client.DisplayName, res.ClientID)
		}
	}
	return q.values, roles, nil
}

// consentedScopes joins the directory's grants with consents given on the
// sign-in page. Microsoft's first-party APIs count as consented.
func (s *Server) consentedScopes(t *Tenant, client, res *Application, user *User) []string {
	if res.FirstParty {
		var all []string
		for _, sc := range res.Scopes {
			all = append(all, sc.Value)
		}
		return all
	}
	scopes := t.consentedScopes(client.ClientID, res.ClientID, user.ObjectID)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.consents[client.ClientID+" "+res.ClientID+" "+user.ObjectID] {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes
}

func (s *Server) response(tok string, exp time.Time, scope string) *tokenResponse {
	in := int64(exp.Sub(s.now()).Seconds())
	return &tokenResponse{TokenType: "Bearer", Scope: scope, ExpiresIn: in, ExtExpiresIn: in, AccessToken: tok}
}

func pkceMatches(challenge, method, verifier string) bool {
	if verifier == "" {
		return false
	}
	switch method {
	case "S256", "":
		if method == "" {
			// RFC 7636: no method means plain.
			return subtle.ConstantTimeCompare([]byte(challenge), []byte(verifier)) == 1
		}
		sum := sha256.Sum256([]byte(verifier))
		return subtle.ConstantTimeCompare([]byte(challenge), []byte(b64(sum[:]))) == 1
	case "plain":
		return subtle.ConstantTimeCompare([]byte(challenge), []byte(verifier)) == 1
	}
	return false
}
