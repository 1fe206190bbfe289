package entra

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/handoff-dev/handoff/internal/loopback"
)

// Limits of minted tokens.
const (
	// MaxMintLifetime bounds --lifetime: Entra's access tokens live at most a day.
	MaxMintLifetime = 24 * time.Hour
	// mintOffset is how far an --expired token's exp lies in the past (and a
	// --not-yet-valid token's nbf in the future): beyond any validator's
	// clock skew (Microsoft's libraries tolerate five minutes).
	mintOffset = time.Hour
	// maxMintRequest bounds the admin request body (--claims included).
	maxMintRequest = 64 << 10
)

// MintRequest asks the emulator for an access token without running a
// flow: for a user (delegated) or an app (app-only), to a resource. The
// token carries what the directory says (the user's or app's roles, the
// consented scopes) unless the request overrides it. The "wrong on purpose"
// fields make tokens a validator must reject, each for one reason.
type MintRequest struct {
	// User is a username or object id; empty for an app-only token.
	User string `json:"user,omitempty"`
	// Client is the calling app (azp/appid): for an app-only token the app
	// the token is issued to (required); for a user token the client the
	// user signed in with, by default the first app consented to the resource.
	Client string `json:"client,omitempty"`
	// Resource is the API the token is for: client id or identifier URI.
	Resource string `json:"resource"`
	// Scopes of the resource (values without prefix) for a user token;
	// empty means those consented to the client.
	Scopes []string `json:"scopes,omitempty"`
	// Tenant (id or domain); empty means the user's tenant, or the client's home tenant.
	Tenant string `json:"tenant,omitempty"`
	// LifetimeSeconds of the token; 0 means the emulator's token lifetime.
	LifetimeSeconds int64 `json:"lifetime_seconds,omitempty"`
	// V1 mints the v1 format whatever the resource asks for.
	V1 bool `json:"v1,omitempty"`
	// Claims are merged last: a value replaces the claim, null removes it.
	Claims map[string]any `json:"claims,omitempty"`

	Expired      bool   `json:"expired,omitempty"`       // exp an hour ago
	NotYetValid  bool   `json:"not_yet_valid,omitempty"` // nbf an hour from now
	Audience     string `json:"audience,omitempty"`      // aud replaced
	Issuer       string `json:"issuer,omitempty"`        // iss replaced
	BadSignature bool   `json:"bad_signature,omitempty"` // current kid, signature of another key
	UnknownKID   bool   `json:"unknown_kid,omitempty"`   // signed by a key the emulator never published
}

// TokenResponse is a token endpoint's answer, as Entra sends it.
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// MintToken makes the token req describes, signed with the current signing
// key (or, on purpose, not).
func (s *Server) MintToken(req MintRequest) (*TokenResponse, error) {
	is, scopeString, err := s.mintIssue(req)
	if err != nil {
		return nil, err
	}
	lifetime := s.lifetime
	if req.LifetimeSeconds != 0 {
		if req.LifetimeSeconds < 0 || req.LifetimeSeconds > int64(MaxMintLifetime/time.Second) {
			return nil, fmt.Errorf("lifetime must be between 1s and %s", MaxMintLifetime)
		}
		lifetime = time.Duration(req.LifetimeSeconds) * time.Second
	}
	now := s.now().Truncate(time.Second)
	nbf := now
	switch {
	case req.Expired && req.NotYetValid:
		return nil, errors.New("a token cannot be both expired and not yet valid")
	case req.Expired:
		nbf = now.Add(-mintOffset - lifetime)
	case req.NotYetValid:
		nbf = now.Add(mintOffset)
	}
	exp := nbf.Add(lifetime)
	ver := is.resource.tokenVersion()
	if req.V1 {
		ver = 1
	}
	c := s.accessClaims(is, nbf, exp, ver)
	c["iat"] = min(now.Unix(), nbf.Unix())
	if req.Audience != "" {
		c["aud"] = req.Audience
	}
	if req.Issuer != "" {
		c["iss"] = req.Issuer
	}
	for k, v := range req.Claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := s.signMinted(c, req)
	if err != nil {
		return nil, err
	}
	in := int64(exp.Sub(now).Seconds())
	return &TokenResponse{TokenType: "Bearer", Scope: scopeString, ExpiresIn: in, ExtExpiresIn: in, AccessToken: tok}, nil
}

// signMinted signs with the current key, or with a throwaway key under the
// current kid (bad signature) or under a kid nobody publishes.
func (s *Server) signMinted(c map[string]any, req MintRequest) (string, error) {
	if req.BadSignature && req.UnknownKID {
		return "", errors.New("choose one of bad_signature and unknown_kid")
	}
	if !req.BadSignature && !req.UnknownKID {
		return signJWT(s.keys.signer(), c)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	kid := s.keys.signer().kid
	if req.UnknownKID {
		kid = randomString(20)
	}
	return signJWT(&signingKey{kid: kid, key: key}, c)
}

// mintIssue resolves who the token is for, to what, with what.
func (s *Server) mintIssue(req MintRequest) (issue, string, error) {
	res := s.dir.resourceByIdentifier(req.Resource)
	if req.Resource == "" || res == nil {
		return issue{}, "", fmt.Errorf("resource %q is not an application in the directory", req.Resource)
	}
	var client *Application
	if req.Client != "" {
		if client = s.dir.Application(req.Client); client == nil {
			return issue{}, "", fmt.Errorf("client %q is not an application in the directory", req.Client)
		}
	}
	if req.User == "" {
		return s.mintAppIssue(req, client, res)
	}
	t, u, err := s.mintUser(req.Tenant, req.User)
	if err != nil {
		return issue{}, "", err
	}
	if client == nil {
		client = s.consentedClient(t, res, u)
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = s.consentedScopes(t, client, res, u)
	}
	for _, sc := range scopes {
		if res.scope(sc) == nil {
			return issue{}, "", fmt.Errorf("%s exposes no scope %q", res.DisplayName, sc)
		}
	}
	is := issue{
		tenant: t, client: principal{appID: client.ClientID}, acr: acrPublic, user: u,
		resource: res, resourceAs: req.Resource, scopes: scopes,
		roles: t.rolesOf(PrincipalUser, u.ObjectID, res.ClientID), authTime: s.now(),
	}
	if !client.PublicClient && len(client.Secrets) > 0 {
		is.acr = acrSecret
	}
	var named []string
	for _, sc := range scopes {
		named = append(named, req.Resource+"/"+sc)
	}
	return is, strings.Join(named, " "), nil
}

func (s *Server) mintAppIssue(req MintRequest, client, res *Application) (issue, string, error) {
	if client == nil {
		return issue{}, "", errors.New("an app-only token needs a client (the app it is issued to); a user token needs a user")
	}
	if len(req.Scopes) > 0 {
		return issue{}, "", errors.New("an app-only token carries roles, not scopes")
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = client.HomeTenant
	}
	t := s.dir.Tenant(tenant)
	if t == nil {
		return issue{}, "", fmt.Errorf("tenant %q is not in the directory", tenant)
	}
	sp := s.dir.servicePrincipal(t, client)
	if sp == nil {
		return issue{}, "", fmt.Errorf("%s has no service principal in tenant %s", client.DisplayName, t.ID)
	}
	is := issue{
		tenant: t, client: principal{appID: client.ClientID, objectID: sp.ObjectID}, acr: acrSecret,
		resource: res, resourceAs: req.Resource, roles: t.rolesOf(PrincipalServicePrincipal, client.ClientID, res.ClientID),
	}
	return is, req.Resource + "/.default", nil
}

// mintUser finds the user in the named tenant, or in any tenant.
func (s *Server) mintUser(tenant, user string) (*Tenant, *User, error) {
	if tenant != "" {
		t := s.dir.Tenant(tenant)
		if t == nil {
			return nil, nil, fmt.Errorf("tenant %q is not in the directory", tenant)
		}
		if u := userNamed(t, user); u != nil {
			return t, u, nil
		}
		return nil, nil, fmt.Errorf("user %q is not in tenant %s", user, t.ID)
	}
	for _, t := range s.dir.Tenants {
		if u := userNamed(t, user); u != nil {
			return t, u, nil
		}
	}
	return nil, nil, fmt.Errorf("user %q is in no tenant of the directory", user)
}

// userNamed finds a user by oid or username; a bare name ("bob") is
// completed with the tenant's domain.
func userNamed(t *Tenant, user string) *User {
	if u := t.User(user); u != nil || strings.Contains(user, "@") {
		return u
	}
	return t.User(user + "@" + t.Domain)
}

// consentedClient is the client a user token names by default: the first
// app with consent to the resource for the user in t, else the resource itself.
func (s *Server) consentedClient(t *Tenant, res *Application, u *User) *Application {
	for _, a := range s.dir.Applications {
		if a != res && !a.FirstParty && len(t.consentedScopes(a.ClientID, res.ClientID, u.ObjectID)) > 0 {
			return a
		}
	}
	return res
}

// handleMint serves POST /_emulator/token to loopback admin callers only,
// guarded as the other /_emulator controls are (and, like them, without CORS).
func (s *Server) handleMint(w http.ResponseWriter, r *http.Request) {
	if msg := adminRefusal(r); msg != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": msg})
		return
	}
	var req MintRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMintRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "body: " + err.Error()})
		return
	}
	resp, err := s.MintToken(req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// adminRefusal says why r may not use an admin endpoint, or "" when it may:
// the caller must be on loopback, name a loopback host (no DNS rebinding:
// see package loopback) and send [AdminHeader], which makes a browser
// preflight that no admin endpoint grants.
func adminRefusal(r *http.Request) string {
	if err := loopback.Check(r); err != nil {
		return "admin endpoints answer loopback callers only: " + err.Error()
	}
	if r.Header.Get(AdminHeader) == "" {
		return "admin requests need the " + AdminHeader + " header"
	}
	return ""
}

// refusePreflight answers a browser's CORS preflight to an admin route
// without granting it, so no web page can send the admin header.
func refusePreflight(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "admin endpoints grant no cross-origin requests"})
}

// ClientTrusting is an HTTP client that trusts the CA in caPEM (an
// emulator's ca.pem) and nothing else, for [Mint] and other calls to a
// running emulator.
func ClientTrusting(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// ErrNoEmulator means no emulator answered at the base URL.
var ErrNoEmulator = errors.New("no Entra emulator answers")

// Mint asks the emulator running at baseURL for a token (its admin API, so
// the token verifies against that emulator's keys). hc must trust the
// emulator's CA ([ClientTrusting] with its ca.pem). It is what
// `entra-emulator token` runs, and what devstack can call.
func Mint(ctx context.Context, hc *http.Client, baseURL string, req MintRequest) (*TokenResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/_emulator/token", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(AdminHeader, "1")
	resp, err := hc.Do(hr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w at %s (start one: entra-emulator, or make run)", ErrNoEmulator, baseURL)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) != nil || e.Description == "" {
			return nil, fmt.Errorf("%s: %s: not an Entra emulator's admin API", baseURL, resp.Status)
		}
		return nil, fmt.Errorf("emulator refused: %s", e.Description)
	}
	var tr TokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return nil, fmt.Errorf("%s: the answer is no token response", baseURL)
	}
	return &tr, nil
}
