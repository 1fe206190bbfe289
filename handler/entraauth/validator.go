// Package entraauth validates Microsoft Entra ID access tokens for a Go API
// and authorizes requests by scope, user role or application permission: for
// Go services what Microsoft.Identity.Web is for ASP.NET.
//
// A [Validator] checks signature (RS256 only, keys from the authority's
// tenant-independent metadata), exp and nbf, the issuer (the authority's own
// template with the token's tid), the tenant allow-list and the audience.
// It does not check scopes or roles: [Validator.Protect] does, with the
// [Requirement]s given. It validates access tokens only; ID tokens are not
// for APIs.
package entraauth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultAuthority is Entra ID's public cloud; AZURE_AUTHORITY_HOST overrides it
// (see [AuthorityFromEnv]).
const DefaultAuthority = "https://login.microsoftonline.com"

// Limits and defaults.
const (
	// MaxTokenSize bounds a bearer token; Entra's are a few KiB.
	MaxTokenSize = 16 << 10
	// DefaultClockSkew is tolerated on exp and nbf.
	DefaultClockSkew = 5 * time.Minute
	// DefaultMinRefreshInterval spaces the JWKS refreshes an unknown kid triggers.
	DefaultMinRefreshInterval = 30 * time.Second
	// retryInterval spaces discovery attempts while the authority is unreachable.
	retryInterval    = 5 * time.Second
	refreshTimeout   = 10 * time.Second
	discoveryTimeout = 20 * time.Second
	maxMetadata      = 1 << 20
)

// Config configures a [Validator]. Its zero value fails closed: New refuses
// an empty ClientID, and an empty TenantIDs unless AllowAnyTenant is set.
type Config struct {
	// ClientID is the API's app id: tokens must be for it.
	ClientID string
	// IdentifierURIs are further accepted audiences (v1 tokens carry the URI
	// the client asked for); nil means api://{ClientID}.
	IdentifierURIs []string
	// TenantIDs are the tenants whose tokens are accepted.
	TenantIDs []string
	// AllowAnyTenant accepts every tenant; a multi-tenant API that does so
	// must authorize by tenant itself.
	AllowAnyTenant bool
	// AcceptV1 accepts v1 tokens (issuer https://sts.windows.net/{tid}/) as
	// well as v2. Off by default: the apps ask for v2.
	AcceptV1 bool
	// ClockSkew tolerated on exp and nbf; 0 means 5 minutes.
	ClockSkew time.Duration
	// MinRefreshInterval between JWKS refreshes for unknown kids; 0 means 30 s.
	MinRefreshInterval time.Duration
	// HTTPClient for discovery and keys; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives rejections (reason and claims, never the token); nil discards.
	Logger *slog.Logger
}

// Validator validates access tokens. It is safe for concurrent use and
// meant to live as long as the process: it caches the authority's metadata
// and keys, fetched lazily on first use.
type Validator struct {
	authority *url.URL
	cfg       Config
	audiences []string
	tenants   map[string]bool
	bgctx     context.Context
	log       *slog.Logger

	mu          sync.Mutex
	ready       *metadata
	discovering chan struct{} // closed when the running discovery ends
	lastTry     time.Time
	lastError   error
}

type metadata struct {
	issuerV2, issuerV1 string // templates with {tenantid}
	keys               *keySource
	stop               context.CancelFunc // ends the key cache's background work
}

// New returns a Validator for tokens issued by authority (e.g.
// https://login.microsoftonline.com). ctx is the process's: it bounds the
// background key refreshes. New does no I/O.
func New(ctx context.Context, authority string, cfg Config) (*Validator, error) {
	u, err := url.Parse(strings.TrimSuffix(authority, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("entraauth: authority %q must be https://host with no path", authority)
	}
	u.Path = ""
	if cfg.ClientID == "" {
		return nil, errors.New("entraauth: Config.ClientID is required")
	}
	if len(cfg.TenantIDs) == 0 && !cfg.AllowAnyTenant {
		return nil, errors.New("entraauth: Config.TenantIDs is empty; list the accepted tenants or set AllowAnyTenant")
	}
	v := &Validator{authority: u, cfg: cfg, bgctx: ctx, tenants: map[string]bool{}}
	for _, t := range cfg.TenantIDs {
		t = strings.ToLower(strings.TrimSpace(t))
		if !guidRE.MatchString(t) {
			return nil, fmt.Errorf("entraauth: tenant %q is not a GUID", t)
		}
		v.tenants[t] = true
	}
	v.audiences = append([]string{cfg.ClientID}, cfg.IdentifierURIs...)
	if cfg.IdentifierURIs == nil {
		v.audiences = append(v.audiences, "api://"+cfg.ClientID)
	}
	if v.cfg.ClockSkew == 0 {
		v.cfg.ClockSkew = DefaultClockSkew
	}
	if v.cfg.MinRefreshInterval == 0 {
		v.cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if v.cfg.HTTPClient == nil {
		v.cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if v.cfg.Now == nil {
		v.cfg.Now = time.Now
	}
	v.log = cfg.Logger
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// IsGUID reports whether s is a lower-case GUID, the form Entra's tid and
// oid claims take.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// header is the JOSE header fields the validator reads. jku, x5u and jwk are
// deliberately absent: keys come from the authority's metadata only.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// claims are decoded once into a typed struct: the hot path allocates little.
type claims struct {
	Iss               string   `json:"iss"`
	Aud               audience `json:"aud"`
	Exp               *number  `json:"exp"`
	Nbf               *number  `json:"nbf"`
	Tid               string   `json:"tid"`
	Oid               string   `json:"oid"`
	Sub               string   `json:"sub"`
	Azp               string   `json:"azp"`
	AppID             string   `json:"appid"`
	Scp               string   `json:"scp"`
	Roles             []string `json:"roles"`
	Idtyp             string   `json:"idtyp"`
	Ver               string   `json:"ver"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	UPN               string   `json:"upn"`
}

type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("a NumericDate must be a number")
	}
	*n = number(f)
	return nil
}

func (n *number) time() time.Time { return time.Unix(int64(*n), 0) }

// audience is aud as a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = ss
	return nil
}

// Validate checks raw and returns the identity it proves. Errors are
// *[Error] (a rejected token, with the status to answer) or wrap
// [ErrUnavailable] (the authority's metadata or keys cannot be had).
func (v *Validator) Validate(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, invalid("no token")
	}
	if len(raw) > MaxTokenSize {
		return nil, invalid(fmt.Sprintf("the token is larger than %d bytes", MaxTokenSize))
	}
	// A JWS in compact form has exactly three parts; a JWE has five.
	h64, rest, ok1 := strings.Cut(raw, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") || h64 == "" || c64 == "" || s64 == "" {
		return nil, invalid("the token is not a signed JWT (three non-empty parts)")
	}
	var h header
	if err := decodeSegment(h64, &h); err != nil {
		return nil, invalid("the token header is malformed")
	}
	// Entra's keys carry no alg: RS256 is pinned here, so none, HS256 with
	// the public key as secret, and every other algorithm fail.
	if h.Alg != "RS256" {
		return nil, invalid(fmt.Sprintf("algorithm %q is not accepted; only RS256", h.Alg))
	}
	if len(h.Crit) > 0 {
		return nil, invalid("the token has critical header extensions")
	}
	if h.Kid == "" {
		return nil, invalid("the token header has no kid")
	}
	md, err := v.metadata(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := md.keys.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil {
		return nil, invalid("the token signature is malformed")
	}
	digest := sha256.Sum256([]byte(raw[:len(h64)+1+len(c64)]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, invalid("the token signature does not verify")
	}
	var c claims
	if err := decodeSegment(c64, &c); err != nil {
		return nil, invalid("the token claims are malformed")
	}
	return v.checkClaims(md, &c, raw)
}

func (v *Validator) checkClaims(md *metadata, c *claims, raw string) (*Identity, error) {
	var issuerTemplate string
	switch c.Ver {
	case "2.0":
		issuerTemplate = md.issuerV2
	case "1.0":
		if !v.cfg.AcceptV1 {
			return nil, invalid("v1 tokens are not accepted")
		}
		issuerTemplate = md.issuerV1
	default:
		return nil, invalid("the token has no known ver")
	}
	if !guidRE.MatchString(c.Tid) {
		return nil, invalid("the token's tid is missing or not a GUID")
	}
	if c.Iss != strings.Replace(issuerTemplate, "{tenantid}", c.Tid, 1) {
		return nil, invalid("the token's issuer is not the authority's issuer for its tenant")
	}
	if !v.cfg.AllowAnyTenant && !v.tenants[c.Tid] {
		return nil, invalid("the token's tenant is not allowed")
	}
	// Entra issues one audience. A token naming several could be replayed
	// by any of them against the others, so it is refused whichever it names.
	if len(c.Aud) > 1 {
		return nil, invalid("the token has more than one audience")
	}
	if !slices.ContainsFunc(c.Aud, func(a string) bool { return slices.Contains(v.audiences, a) }) {
		return nil, invalid("the token is not for this API (aud)")
	}
	now := v.cfg.Now()
	if c.Exp == nil || c.Nbf == nil {
		return nil, invalid("the token lacks exp or nbf")
	}
	if !now.Before(c.Exp.time().Add(v.cfg.ClockSkew)) {
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token has expired", expired: true}
	}
	if c.Nbf.time().After(now.Add(v.cfg.ClockSkew)) {
		return nil, invalid("the token is not valid yet (nbf)")
	}
	id := &Identity{
		ObjectID: c.Oid, TenantID: c.Tid, Subject: c.Sub, Name: c.Name,
		PreferredUsername: c.PreferredUsername, Roles: c.Roles,
		CallerAppID: c.Azp, Version: c.Ver, ExpiresAt: c.Exp.time(), Token: raw,
	}
	if id.PreferredUsername == "" {
		id.PreferredUsername = c.UPN
	}
	if id.CallerAppID == "" {
		id.CallerAppID = c.AppID
	}
	if c.Scp != "" {
		id.Scopes = strings.Fields(c.Scp)
	}
	// idtyp says it when the API asked for it; otherwise an app-only token
	// is one with no scp whose subject is the caller itself (oid == sub).
	switch c.Idtyp {
	case "app":
		id.AppOnly = true
	case "":
		id.AppOnly = c.Scp == "" && c.Oid != "" && c.Oid == c.Sub
	}
	if id.AppOnly && len(id.Scopes) > 0 {
		return nil, invalid("the token claims to be app-only but carries delegated scopes")
	}
	return id, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// metadata discovers the authority's issuer templates and JWKS URL once,
// from its tenant-independent documents, and fetches the keys. Discovery
// runs once for all concurrent callers, under its own deadline (a caller
// hanging up cannot fail it for the others); each caller waits at most
// until its own ctx ends. While the authority is unreachable, attempts are
// spaced by retryInterval.
func (v *Validator) metadata(ctx context.Context) (*metadata, error) {
	v.mu.Lock()
	if v.ready != nil {
		md := v.ready
		v.mu.Unlock()
		return md, nil
	}
	wait := v.discovering
	if wait == nil {
		if !v.lastTry.IsZero() && v.cfg.Now().Sub(v.lastTry) < retryInterval {
			err := v.lastError
			v.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		v.lastTry = v.cfg.Now()
		wait = make(chan struct{})
		v.discovering = wait
		go v.runDiscovery(wait)
	}
	v.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ready == nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, v.lastError)
	}
	return v.ready, nil
}

func (v *Validator) runDiscovery(done chan struct{}) {
	ctx, cancel := context.WithTimeout(v.bgctx, discoveryTimeout)
	defer cancel()
	md, err := v.discover(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.lastError = err
		v.log.Warn("entraauth: authority metadata unavailable", "authority", v.authority.String(), "error", err.Error())
	} else {
		v.ready = md
	}
	v.discovering = nil
	close(done)
}

func (v *Validator) discover(ctx context.Context) (*metadata, error) {
	base := v.authority.String()
	var v2, v1 struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, base+"/common/v2.0/.well-known/openid-configuration", &v2); err != nil {
		return nil, err
	}
	if !strings.Contains(v2.Issuer, "{tenantid}") {
		return nil, fmt.Errorf("v2 metadata issuer %q has no {tenantid} template", v2.Issuer)
	}
	md := &metadata{issuerV2: v2.Issuer}
	if v.cfg.AcceptV1 {
		if err := v.getJSON(ctx, base+"/common/.well-known/openid-configuration", &v1); err != nil {
			return nil, err
		}
		if !strings.Contains(v1.Issuer, "{tenantid}") {
			return nil, fmt.Errorf("v1 metadata issuer %q has no {tenantid} template", v1.Issuer)
		}
		md.issuerV1 = v1.Issuer
	}
	// Keys are fetched from the authority's own host only, whatever the document says.
	ju, err := url.Parse(v2.JWKSURI)
	if err != nil || ju.Scheme != "https" || ju.Host != v.authority.Host {
		return nil, fmt.Errorf("jwks_uri %q is not on the authority's host", v2.JWKSURI)
	}
	// The cache's background work lives as long as the validator, unless
	// this attempt fails: then it is stopped, not leaked.
	bg, stop := context.WithCancel(v.bgctx)
	keys, err := newKeySource(ctx, bg, v2.JWKSURI, v.cfg.HTTPClient, v.cfg.MinRefreshInterval, v.cfg.Now)
	if err != nil {
		stop()
		return nil, fmt.Errorf("keys: %w", err)
	}
	md.keys, md.stop = keys, stop
	return md, nil
}

func (v *Validator) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxMetadata)).Decode(out)
}

// AuthorityFromEnv is AZURE_AUTHORITY_HOST (the variable azidentity reads
// too) when set, else [DefaultAuthority].
func AuthorityFromEnv() string {
	if h := strings.TrimSpace(os.Getenv("AZURE_AUTHORITY_HOST")); h != "" {
		return strings.TrimSuffix(h, "/")
	}
	return DefaultAuthority
}
