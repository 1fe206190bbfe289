// Package entraauth validates Microsoft Entra ID access tokens for a Go API
// and authorizes requests by scope, user role or application permission: for
// Go services what Microsoft.Identity.Web is for ASP.NET.
//
// A [Validator] checks the signature (jwx/v2's jws: RS256 only, the key the
// kid names in the authority's tenant-independent metadata), exp and nbf, the issuer (the authority's own
// template with the token's tid), the tenant allow-list and the audience.
// It does not check scopes or roles: [Validator.Protect] does, with the
// [Requirement]s given. It validates access tokens only; ID tokens are not
// for APIs.
package entraauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/handoff-dev/handoff/handler/internal/flight"
	"github.com/handoff-dev/handoff/handler/internal/guid"
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
	// DefaultMinRefreshInterval spaces the JWKS fetches, whatever triggers
	// them (unknown kids, the periodic refresh): a token bucket of one.
	DefaultMinRefreshInterval = 5 * time.Second
	// DefaultKeyRefreshInterval: the key set is fetched again at least this
	// often (up to 10% earlier, jittered), so a retired key stops verifying
	// within it.
	DefaultKeyRefreshInterval = time.Hour
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
	// MinRefreshInterval between JWKS fetches; 0 means 5 s. An unknown kid
	// triggers a fetch unless one ran within it, so a rotated-in key
	// validates within it, while a flood of random kids costs the authority
	// at most one fetch per interval.
	MinRefreshInterval time.Duration
	// KeyRefreshInterval between periodic JWKS fetches; 0 means 1 hour. A
	// key the authority retires stops verifying within it. It must not be
	// below MinRefreshInterval.
	KeyRefreshInterval time.Duration
	// HTTPClient for discovery and keys; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives rejections (reason and claims, never the token); nil discards.
	Logger *slog.Logger
	// TracerProvider receives the span of each validation in [Validator.Protect]
	// (never the token); nil means the global provider (otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
	// TokenCacheSize is how many accepted tokens are remembered, so that a
	// token presented again is neither decoded nor its signature verified
	// again while the key that verified it is still in the key set; every
	// other check runs on every call. 0 means [DefaultTokenCacheSize]; a
	// negative value turns the cache off.
	TokenCacheSize int
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
	tracer    trace.Tracer

	discovery flight.Group[*metadata]
	verified  *verifiedTokens

	mu          sync.Mutex
	ready       *metadata
	discovering bool      // an attempt is under way: callers wait for it
	lastTry     time.Time // when the last attempt began
	lastError   error
}

type metadata struct {
	issuerV2, issuerV1 string // templates with {tenantid}
	keys               *keySource
	stop               context.CancelFunc // ends the key fetches under way
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
		if !guid.Valid(t) {
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
	if v.cfg.KeyRefreshInterval == 0 {
		v.cfg.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if v.cfg.ClockSkew < 0 || v.cfg.MinRefreshInterval < 0 || v.cfg.KeyRefreshInterval < v.cfg.MinRefreshInterval {
		return nil, fmt.Errorf("entraauth: ClockSkew and MinRefreshInterval must not be negative, and KeyRefreshInterval (%v) not below MinRefreshInterval (%v)",
			v.cfg.KeyRefreshInterval, v.cfg.MinRefreshInterval)
	}
	if v.cfg.HTTPClient == nil {
		v.cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if v.cfg.Now == nil {
		v.cfg.Now = time.Now
	}
	v.discovery.Base, v.discovery.Timeout = ctx, discoveryTimeout
	v.verified = newVerifiedTokens(cfg.TokenCacheSize)
	v.log = cfg.Logger
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	v.tracer = tp.Tracer(ScopeName)
	return v, nil
}

// rs256 is jwx's RS256 verifier, the only algorithm an Entra token uses.
var rs256 = func() jws.Verifier {
	v, err := jws.NewVerifier(jwa.RS256)
	if err != nil {
		panic(err) // jwx always has RS256
	}
	return v
}()

// header is the JWS protected header: what the validator reads of it.
// jku, x5u and jwk are never read: keys come from the authority's metadata
// only. (encoding/json matches keys case-insensitively, so "CRIT" counts
// as crit: stricter, never looser.)
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// checkHeader decodes the protected header, refuses what an Entra token's
// header never has, and returns its kid. It decodes into a typed struct
// rather than through jws.Parse, whose generic header map doubled the
// validator's own cost (measured with make bench); the signature itself is
// verified by jwx (rs256).
func checkHeader(h64 string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(h64)
	var h header
	if err != nil || json.Unmarshal(b, &h) != nil {
		return "", invalid("the token header is malformed")
	}
	// Entra's keys carry no alg: RS256 is pinned, so none, HS256 with the
	// public key as secret, and every other algorithm fail.
	if h.Alg != string(jwa.RS256) {
		return "", invalid(fmt.Sprintf("algorithm %q is not accepted; only RS256", h.Alg))
	}
	if h.Crit != nil {
		return "", invalid("the token has critical header extensions")
	}
	if h.B64 != nil {
		// RFC 7797's unencoded payload: never in an Entra token.
		return "", invalid("the token header has b64")
	}
	if h.Kid == "" {
		return "", invalid("the token header has no kid")
	}
	return h.Kid, nil
}

// claims are decoded once into a typed struct: the hot path allocates little.
type claims struct {
	Iss               string   `json:"iss"`
	Aud               any      `json:"aud"` // a string or an array of strings
	Exp               *float64 `json:"exp"` // a string here fails the decode
	Nbf               *float64 `json:"nbf"`
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

// unixTime is a NumericDate as a time.
func unixTime(n float64) time.Time { return time.Unix(int64(n), 0) }

// audiences reads aud, a string or an array of strings; ok is false for
// anything else.
func audiences(aud any) (auds []string, ok bool) {
	switch a := aud.(type) {
	case nil: // no aud: for no API, refused as not for this one
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			auds = append(auds, s)
		}
		return auds, true
	}
	return nil, false
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
	d := digest(raw)
	cached, ok := v.verified.get(d)
	if ok {
		if id, done, err := v.checkCached(ctx, d, cached, raw); done {
			return id, err
		}
	}
	e, md, err := v.verify(ctx, raw, h64, c64, s64)
	var id *Identity
	if err == nil {
		id, err = v.checkClaims(md, e.claims, raw)
	}
	switch {
	case err == nil:
		v.verified.put(d, e)
	case ok:
		v.verified.remove(d)
	}
	return id, err
}

// checkCached runs the claim checks on a token verified before, if the key
// that verified it is still the key set's for its kid (done is false when
// the key set was fetched again since: the caller verifies anew). A token
// that fails them (expired, say) is forgotten.
func (v *Validator) checkCached(ctx context.Context, d [sha256.Size]byte, e verifiedToken, raw string) (id *Identity, done bool, err error) {
	md, err := v.metadata(ctx)
	if err != nil {
		return nil, true, err
	}
	pub, err := md.keys.key(ctx, e.kid)
	if err != nil {
		return nil, true, err
	}
	if pub != e.pub {
		return nil, false, nil
	}
	id, err = v.checkClaims(md, e.claims, raw)
	if err != nil {
		v.verified.remove(d)
	}
	return id, true, err
}

// verify checks the header, verifies the signature with the key its kid
// names, and decodes the claims.
func (v *Validator) verify(ctx context.Context, raw, h64, c64, s64 string) (verifiedToken, *metadata, error) {
	var none verifiedToken
	// The header's alg only selects a refusal, never the algorithm or the
	// key: jwx verifies RS256 with the key the kid names in the authority's
	// cached set, over the first two segments as received.
	kid, err := checkHeader(h64)
	if err != nil {
		return none, nil, err
	}
	sig, err1 := base64.RawURLEncoding.DecodeString(s64)
	payload, err2 := base64.RawURLEncoding.DecodeString(c64)
	if err1 != nil || err2 != nil {
		return none, nil, invalid("the token is not a well-formed JWS")
	}
	md, err := v.metadata(ctx)
	if err != nil {
		return none, nil, err
	}
	pub, err := md.keys.key(ctx, kid)
	if err != nil {
		return none, nil, err
	}
	if err := rs256.Verify([]byte(raw[:len(h64)+1+len(c64)]), sig, pub); err != nil {
		return none, nil, invalid("the token signature does not verify")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return none, nil, invalid("the token claims are malformed")
	}
	return verifiedToken{kid: kid, pub: pub, claims: &c}, md, nil
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
	if !guid.Valid(c.Tid) {
		return nil, invalid("the token's tid is missing or not a GUID")
	}
	if c.Iss != strings.Replace(issuerTemplate, "{tenantid}", c.Tid, 1) {
		return nil, invalid("the token's issuer is not the authority's issuer for its tenant")
	}
	if !v.cfg.AllowAnyTenant && !v.tenants[c.Tid] {
		return nil, invalid("the token's tenant is not allowed")
	}
	auds, ok := audiences(c.Aud)
	if !ok {
		return nil, invalid("the token claims are malformed (aud)")
	}
	// Entra issues one audience. A token naming several could be replayed
	// by any of them against the others, so it is refused whichever it names.
	if len(auds) > 1 {
		return nil, invalid("the token has more than one audience")
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.audiences, a) }) {
		return nil, invalid("the token is not for this API (aud)")
	}
	now := v.cfg.Now()
	if c.Exp == nil || c.Nbf == nil {
		return nil, invalid("the token lacks exp or nbf")
	}
	if !now.Before(unixTime(*c.Exp).Add(v.cfg.ClockSkew)) {
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token has expired", expired: true}
	}
	if unixTime(*c.Nbf).After(now.Add(v.cfg.ClockSkew)) {
		return nil, invalid("the token is not valid yet (nbf)")
	}
	id := &Identity{
		ObjectID: c.Oid, TenantID: c.Tid, Subject: c.Sub, Name: c.Name,
		PreferredUsername: c.PreferredUsername, Roles: slices.Clone(c.Roles),
		CallerAppID: c.Azp, Version: c.Ver, ExpiresAt: unixTime(*c.Exp), Token: raw,
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

// metadata discovers the authority's issuer templates and JWKS URL once,
// from its tenant-independent documents, and fetches the keys. Discovery
// runs once for all concurrent callers, under its own deadline (a caller
// hanging up cannot fail it for the others); each caller waits at most
// until its own ctx ends. While the authority is unreachable, attempts are
// spaced by retryInterval, and callers in between fail at once.
func (v *Validator) metadata(ctx context.Context) (*metadata, error) {
	v.mu.Lock()
	md, recent, err := v.ready, v.recentFailure(), v.lastError
	v.mu.Unlock()
	if md != nil {
		return md, nil
	}
	if recent {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	md, err = v.discovery.Do(ctx, "discovery", v.runDiscovery)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return md, nil
}

// recentFailure: the last discovery failed within retryInterval, and none
// is under way. Call with v.mu held.
func (v *Validator) recentFailure() bool {
	return !v.discovering && !v.lastTry.IsZero() && v.cfg.Now().Sub(v.lastTry) < retryInterval
}

// runDiscovery is one attempt, unless another has succeeded or failed too
// recently meanwhile (a caller may reach the flight just after one ended).
func (v *Validator) runDiscovery(ctx context.Context) (*metadata, error) {
	v.mu.Lock()
	if v.ready != nil || v.recentFailure() {
		defer v.mu.Unlock()
		if v.ready != nil {
			return v.ready, nil
		}
		return nil, v.lastError
	}
	v.discovering, v.lastTry = true, v.cfg.Now()
	v.mu.Unlock()
	md, err := v.discover(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.discovering = false
	if err != nil {
		v.lastError = err
		v.log.WarnContext(ctx, "entraauth: authority metadata unavailable", "authority", v.authority.String(), "error", err.Error())
		return nil, err
	}
	v.ready = md
	return md, nil
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
	// Key fetches live as long as the validator, unless this attempt
	// fails: then their context is cancelled, not leaked.
	bg, stop := context.WithCancel(v.bgctx)
	keys, err := newKeySource(ctx, bg, v2.JWKSURI, v.cfg.HTTPClient, v.cfg.MinRefreshInterval, v.cfg.KeyRefreshInterval, v.cfg.Now)
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
