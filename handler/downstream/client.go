// Package downstream acquires the tokens a service needs to call other
// services: On-Behalf-Of the signed-in user (at the user's own tenant) and
// as the app itself (client credentials, at the home tenant), with MSAL Go,
// bounded caches, retries of transient failures, a new token (bounded) when
// a downstream API refuses one as invalid, and typed errors for what a
// caller can act on.
//
// Build one [Client] per process, in main, and reuse it: each holds MSAL
// clients whose caches and discovered metadata make repeated calls cheap.
package downstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/internal/flight"
	"github.com/handoff-dev/handoff/handler/internal/guid"
)

// Defaults and bounds.
const (
	// DefaultOBOCacheSize bounds the On-Behalf-Of results kept, and the
	// distinct user tokens an MSAL client may cache before it is replaced.
	DefaultOBOCacheSize = 1000
	// DefaultMaxTenants bounds the per-tenant MSAL clients kept.
	DefaultMaxTenants = 100
	// DefaultMaxAttempts of a token request when failures are transient.
	DefaultMaxAttempts = 3
	// expiryMargin: a cached token is not served within 5 minutes of its
	// expiry, as MSAL does.
	expiryMargin = 5 * time.Minute
	retryBase    = 200 * time.Millisecond
	retryMax     = 5 * time.Second
)

// Config configures a [Client].
type Config struct {
	// Authority is the Entra host, e.g. https://login.microsoftonline.com
	// (entraauth.AuthorityFromEnv reads AZURE_AUTHORITY_HOST).
	Authority string
	// HomeTenantID is where the app is registered: client credentials run there.
	HomeTenantID string
	// ClientID is the app's id.
	ClientID string
	// Credential proves the app's identity.
	Credential Credential
	// HTTPClient for token requests; nil means [NewHTTPClient].
	HTTPClient *http.Client
	// OBOCacheSize: 0 means DefaultOBOCacheSize.
	OBOCacheSize int
	// MaxTenants: 0 means DefaultMaxTenants.
	MaxTenants int
	// MaxAttempts per acquisition for transient failures; 0 means 3.
	MaxAttempts int
	// ForcedRefreshInterval spaces the new tokens a downstream API's
	// invalid_token refusals force ([Client.RefreshAppToken],
	// [Client.RefreshOnBehalfOf]), per token kind and tenant; 0 means 5 s.
	ForcedRefreshInterval time.Duration
	// Now is the clock for cache expiry; nil means time.Now.
	Now func() time.Time
	// Logger: nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider receive a span and a count per
	// token acquisition (kind, tenant, cache hit or miss; never the token);
	// nil means the global providers (otel.GetTracerProvider() ...).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Token is an access token for a downstream API. Its String method hides
// the token, so it cannot leak into logs by accident.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
}

// String hides the access token: a Token printed or logged shows only its
// expiry.
func (t Token) String() string {
	return "Token{expires " + t.ExpiresOn.UTC().Format(time.RFC3339) + "}"
}

// SetAuthHeader sets the request's Authorization header to the token.
func (t Token) SetAuthHeader(r *http.Request) { r.Header.Set("Authorization", "Bearer "+t.AccessToken) }

// Stats describe the caches, for tests and metrics.
type Stats struct {
	OBOCached   int // results in the OBO cache
	OBOHits     int64
	MSALEntries int // distinct user tokens held by the current MSAL clients
	Tenants     int // tenant clients held
	Rebuilds    int64
	// ForcedRefreshes counts the tokens dropped after an invalid_token
	// refusal; RefreshesLimited the refusals ForcedRefreshInterval left
	// unanswered.
	ForcedRefreshes  int64
	RefreshesLimited int64
}

// Client acquires tokens. It is safe for concurrent use.
type Client struct {
	cfg       Config
	authority string
	discovery bool
	log       *slog.Logger

	obo      *lru[Token]
	oboHits  atomic.Int64
	inflight flight.Group[acquired] // concurrent acquisitions of one key share one request
	tel      *telemetry

	gateMu sync.Mutex
	gates  *lru[*refreshGate] // by token kind and tenant

	mu          sync.Mutex
	version     string                     // of the credential the clients were built with
	app         *confidential.Client       // home tenant, client credentials
	appTokens   map[string]Token           // app's tokens by scopes, got by app; cleared with it
	tenants     *lru[*confidential.Client] // per user tenant, On-Behalf-Of
	msalEntries int
	stats       Stats
}

// New checks cfg and returns a Client. It does no I/O: MSAL discovers the
// authority on first use.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Authority, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" {
		return nil, fmt.Errorf("downstream: authority %q must be https://host", cfg.Authority)
	}
	if !guid.Valid(cfg.HomeTenantID) || cfg.ClientID == "" || cfg.Credential == nil {
		return nil, errors.New("downstream: HomeTenantID (a GUID), ClientID and Credential are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	if cfg.OBOCacheSize <= 0 {
		cfg.OBOCacheSize = DefaultOBOCacheSize
	}
	if cfg.MaxTenants <= 0 {
		cfg.MaxTenants = DefaultMaxTenants
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.ForcedRefreshInterval < 0 {
		return nil, errors.New("downstream: ForcedRefreshInterval must not be negative")
	}
	if cfg.ForcedRefreshInterval == 0 {
		cfg.ForcedRefreshInterval = DefaultForcedRefreshInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg: cfg, authority: u.String(), discovery: microsoftHosts[strings.ToLower(u.Hostname())], log: log,
		obo: newLRU[Token](cfg.OBOCacheSize), tenants: newLRU[*confidential.Client](cfg.MaxTenants),
		gates: newLRU[*refreshGate](2 * (cfg.MaxTenants + 1)),
	}
	c.inflight.Timeout = flightTimeout
	c.tel = newTelemetry(cfg.TracerProvider, cfg.MeterProvider)
	return c, nil
}

// acquired is a token and whether a cache (MSAL's) answered it.
type acquired struct {
	tok       Token
	fromCache bool
}

// flightTimeout bounds a shared acquisition, retries included: it runs
// under its own deadline, not the first caller's.
const flightTimeout = 30 * time.Second

// microsoftHosts are the public and sovereign clouds' authorities, where
// MSAL's instance discovery applies. Elsewhere (the emulator) it is off.
var microsoftHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoftonline.us": true,
	"login.chinacloudapi.cn": true, "login.partner.microsoftonline.cn": true,
}

// ErrNotDelegated: On-Behalf-Of needs a user's token and tenant, and was
// given none (or an app-only identity).
var ErrNotDelegated = errors.New("downstream: On-Behalf-Of needs a user's delegated token and tenant")

// OnBehalfOf exchanges assertion, the access token a user's client sent
// this API (the bearer token, already validated), for a token to a
// downstream API with scopes (e.g. "{clientId}/.default"). tenantID is the
// user's tenant (the token's tid): the exchange runs at that tenant's
// authority, never at common. Results are cached until five minutes before
// they expire; the cache holds at most OBOCacheSize of them.
func (c *Client) OnBehalfOf(ctx context.Context, assertion, tenantID string, scopes ...string) (tok Token, err error) {
	if assertion == "" || !guid.Valid(tenantID) {
		return Token{}, ErrNotDelegated
	}
	if len(scopes) == 0 {
		return Token{}, errors.New("downstream: no scopes")
	}
	key := oboKey(assertion, tenantID, scopes)
	if tok, ok := c.cachedOBO(ctx, key, tenantID); ok {
		return tok, nil
	}
	ctx, span := c.tel.start(ctx, kindOBO, tenantID)
	got := acquired{}
	defer func() { c.tel.end(ctx, span, kindOBO, got.fromCache, err) }()
	got, err = c.inflight.Do(ctx, key, func(ctx context.Context) (acquired, error) {
		got, err := c.acquire(ctx, scopes, func(ctx context.Context) (confidential.AuthResult, error) {
			cc, err := c.tenantClient(ctx, tenantID)
			if err != nil {
				return confidential.AuthResult{}, err
			}
			return cc.AcquireTokenOnBehalfOf(ctx, assertion, scopes)
		})
		if err != nil {
			return acquired{}, err
		}
		c.obo.put(key, got.tok, got.tok.ExpiresOn.Add(-expiryMargin))
		c.countMSALEntry()
		return got, nil
	})
	return got.tok, err
}

// CachedOnBehalfOf is [Client.OnBehalfOf] when its token is cached: the
// token, recorded as a cache hit as OnBehalfOf records it. When it is not
// (or the arguments are not a user's), ok is false and nothing is
// requested or recorded: a caller can then run OnBehalfOf in the
// background, and spares a goroutine the calls a cache answers.
func (c *Client) CachedOnBehalfOf(ctx context.Context, assertion, tenantID string, scopes ...string) (tok Token, ok bool) {
	if assertion == "" || !guid.Valid(tenantID) || len(scopes) == 0 {
		return Token{}, false
	}
	return c.cachedOBO(ctx, oboKey(assertion, tenantID, scopes), tenantID)
}

// cachedOBO answers an On-Behalf-Of request from the cache, recording the
// hit (a span and a count); on a miss it records nothing.
func (c *Client) cachedOBO(ctx context.Context, key, tenantID string) (Token, bool) {
	tok, ok := c.obo.get(key, c.cfg.Now())
	if !ok {
		return Token{}, false
	}
	c.oboHits.Add(1)
	ctx, span := c.tel.start(ctx, kindOBO, tenantID)
	c.tel.end(ctx, span, kindOBO, true, nil)
	return tok, true
}

// OnBehalfOfUser is [Client.OnBehalfOf] for an identity
// [entraauth.Validator] proved; an app-only identity is refused with
// [ErrNotDelegated] before any request.
func (c *Client) OnBehalfOfUser(ctx context.Context, user *entraauth.Identity, scopes ...string) (Token, error) {
	if user == nil || user.AppOnly {
		return Token{}, ErrNotDelegated
	}
	return c.OnBehalfOf(ctx, user.Token, user.TenantID, scopes...)
}

// oboKey keys the OBO cache by the token's hash, never the token. The
// tenant leads the key, so a forced refresh can drop the tenant's results.
func oboKey(assertion, tenantID string, scopes []string) string {
	sum := sha256.Sum256([]byte(assertion))
	return tenantID + " " + hex.EncodeToString(sum[:]) + " " + strings.Join(sortedCopy(scopes), " ")
}

// AppToken gets a token for the app itself (client credentials) at the home
// tenant, e.g. scopes "{clientId}/.default". MSAL serves it from its cache
// until it nears expiry.
func (c *Client) AppToken(ctx context.Context, scopes ...string) (tok Token, err error) {
	if len(scopes) == 0 {
		return Token{}, errors.New("downstream: no scopes")
	}
	ctx, span := c.tel.start(ctx, kindApp, c.cfg.HomeTenantID)
	var got acquired
	defer func() { c.tel.end(ctx, span, kindApp, got.fromCache, err) }()
	key := "app " + strings.Join(sortedCopy(scopes), " ")
	// The credential is read first, as on the way to MSAL, so that a
	// rotated one replaces the client (and its tokens) before any is served.
	if _, _, err := c.current(ctx); err == nil {
		if tok, ok := c.cachedAppToken(key); ok {
			got = acquired{tok: tok, fromCache: true}
			return tok, nil
		}
	}
	// Concurrent first calls share one request.
	got, err = c.inflight.Do(ctx, key, func(ctx context.Context) (acquired, error) {
		var app *confidential.Client
		got, err := c.acquire(ctx, scopes, func(ctx context.Context) (confidential.AuthResult, error) {
			cc, err := c.appClient(ctx)
			if err != nil {
				return confidential.AuthResult{}, err
			}
			app = cc
			return cc.AcquireTokenByCredential(ctx, scopes)
		})
		if err == nil {
			c.keepAppToken(key, app, got.tok)
		}
		return got, err
	})
	return got.tok, err
}

// maxAppTokenScopes bounds the app tokens kept in front of MSAL's cache (an
// app asks for a handful of scope sets; past the bound, MSAL's cache alone
// answers).
const maxAppTokenScopes = 16

// cachedAppToken is the app token kept for key, unless it is within
// expiryMargin of expiring. Kept in front of MSAL's cache, which answered
// every call before: the shared-request goroutine and MSAL's cache lookup
// were about 4% of the Task API's CPU per create (make bench-load,
// docs/performance.md).
func (c *Client) cachedAppToken(key string) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, ok := c.appTokens[key]
	if !ok || !c.cfg.Now().Before(tok.ExpiresOn.Add(-expiryMargin)) {
		return Token{}, false
	}
	return tok, true
}

// keepAppToken keeps tok, which app got, if app is still the current
// client: a rotation or a forced refresh that replaced it meanwhile
// dropped its tokens.
func (c *Client) keepAppToken(key string, app *confidential.Client, tok Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if app == nil || c.app != app {
		return
	}
	if _, ok := c.appTokens[key]; !ok && len(c.appTokens) >= maxAppTokenScopes {
		return
	}
	if c.appTokens == nil {
		c.appTokens = map[string]Token{}
	}
	c.appTokens[key] = tok
}

// Stats returns the cache counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.OBOCached, s.MSALEntries, s.Tenants = c.obo.len(), c.msalEntries, c.tenants.len()
	s.OBOHits = c.oboHits.Load()
	return s
}

// acquire runs one acquisition with retries of transient failures, within
// ctx's deadline, and one retry after a refused credential was re-read.
func (c *Client) acquire(ctx context.Context, scopes []string, call func(context.Context) (confidential.AuthResult, error)) (acquired, error) {
	rereadDone := false
	for attempt := 1; ; attempt++ {
		res, err := call(ctx)
		if err == nil {
			return acquired{tok: Token{AccessToken: res.AccessToken, ExpiresOn: res.ExpiresOn},
				fromCache: res.Metadata.TokenSource == confidential.TokenSourceCache}, nil
		}
		err = classify(ctx, err, scopes)
		var ce *CredentialError
		if errors.As(err, &ce) {
			c.log.ErrorContext(ctx, "downstream: the app's credential was refused; fix the configuration", "aadsts", ce.Code, "fix", ce.Fix, "correlation_id", ce.CorrelationID)
			if !rereadDone && (ce.Code == 7000215 || ce.Code == 7000222) {
				// A secret rotated in Key Vault before our refresh: read it again.
				rereadDone = true
				if c.credentialRefused(ctx) {
					continue
				}
			}
			return acquired{}, err
		}
		var te *transientError
		if !errors.As(err, &te) || attempt >= c.cfg.MaxAttempts {
			return acquired{}, err
		}
		wait := min(retryBase<<min(attempt-1, 5), retryMax)
		wait += time.Duration(rand.Int64N(int64(wait / 2)))
		wait = max(wait, te.retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return acquired{}, err
		}
		c.log.WarnContext(ctx, "downstream: token request failed; retrying", "attempt", attempt, "wait", wait.String(), "error", te.err.Error())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return acquired{}, err
		}
	}
}

// credentialRefused marks the credential stale and reports whether a
// re-read produced a different one (the clients are then rebuilt).
func (c *Client) credentialRefused(ctx context.Context) bool {
	c.cfg.Credential.refused()
	c.mu.Lock()
	before := c.version
	c.mu.Unlock()
	if _, err := c.appClient(ctx); err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version != before
}

// current reads the credential, outside the client's lock (a rotating one
// may read Key Vault), and rebuilds the MSAL clients when its version
// changed. Failing to read it is a configuration error, not a transient one.
func (c *Client) current(ctx context.Context) (confidential.Credential, string, error) {
	cred, version, err := c.cfg.Credential.current(ctx)
	if err != nil {
		return cred, "", &CredentialError{TokenError: &TokenError{}, Fix: err.Error(), Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version == c.version && c.app != nil {
		return cred, version, nil
	}
	app, err := c.newMSAL(c.cfg.HomeTenantID, cred)
	if err != nil {
		return cred, "", &CredentialError{TokenError: &TokenError{}, Fix: err.Error(), Err: err}
	}
	if c.app != nil {
		c.stats.Rebuilds++
	}
	c.version, c.app, c.appTokens = version, app, nil
	c.tenants.clear()
	c.msalEntries = 0
	return cred, version, nil
}

func (c *Client) appClient(ctx context.Context) (*confidential.Client, error) {
	if _, _, err := c.current(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.app, nil
}

// tenantClient returns the tenant's MSAL client, creating it once. Creating
// one does no I/O, so holding the lock is cheap, and concurrent first use of
// a tenant creates exactly one.
func (c *Client) tenantClient(ctx context.Context, tenantID string) (*confidential.Client, error) {
	cred, version, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.tenants.get(tenantID, time.Time{}); ok {
		return cc, nil
	}
	if version != c.version {
		// The credential changed again meanwhile: build with the newest.
		return nil, &transientError{err: errors.New("credential changed during the request")}
	}
	cc, err := c.newMSAL(tenantID, cred)
	if err != nil {
		return nil, &CredentialError{TokenError: &TokenError{}, Fix: err.Error(), Err: err}
	}
	c.tenants.put(tenantID, cc, time.Time{})
	return cc, nil
}

// countMSALEntry counts a user token MSAL now caches. MSAL's OBO cache never
// evicts, so once the clients hold OBOCacheSize of them they are replaced
// by fresh ones and the old caches become garbage.
func (c *Client) countMSALEntry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msalEntries++
	if c.msalEntries >= c.cfg.OBOCacheSize {
		c.tenants.clear()
		c.msalEntries = 0
		c.stats.Rebuilds++
		c.log.Info("downstream: MSAL On-Behalf-Of caches reached their bound; replaced the clients", "bound", c.cfg.OBOCacheSize)
	}
}

func (c *Client) newMSAL(tenantID string, cred confidential.Credential) (*confidential.Client, error) {
	opts := []confidential.Option{confidential.WithHTTPClient(c.cfg.HTTPClient)}
	if !c.discovery {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	cc, err := confidential.New(c.authority+"/"+tenantID, c.cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("downstream: MSAL client for tenant %s: %w", tenantID, err)
	}
	return &cc, nil
}

var sharedTransport = sync.OnceValue(func() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
})

// NewHTTPClient returns a client for token endpoints and downstream APIs:
// one transport shared by the process (connection reuse), dial and TLS
// timeouts of 5 s, response headers within 10 s, 30 s in all.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: sharedTransport(), Timeout: 30 * time.Second}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
