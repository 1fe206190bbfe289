// Package entra is a local, offline emulator of Microsoft Entra ID's v2
// endpoints: discovery, keys, the token endpoint (client credentials,
// On-Behalf-Of, authorization code with PKCE, refresh token, password), a
// sign-in page, and an App Service style managed identity endpoint. The real
// MSAL and azidentity clients accept it when pointed at its base URL with
// instance discovery disabled and its CA trusted.
//
// It is for development and tests only: its CA, keys and default secrets are
// not secret, and production configuration must never trust its issuer.
// What it emulates, and what not, is listed in docs/emulator.md.
//
// A Server is an http.Handler. It serves HTTPS only ([Server.TLSConfig]),
// since every Microsoft client refuses an http authority.
package entra

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/handoff-dev/handoff/emulator/internal/serve"
)

// DefaultBaseURL is the emulator's canonical base URL unless configured otherwise.
const DefaultBaseURL = "https://127.0.0.1:7070"

// Limits of what the emulator accepts and keeps.
const (
	maxFormBytes  = 64 << 10 // token and authorize request bodies
	codeLifetime  = 10 * time.Minute
	maxCodes      = 10000 // outstanding authorization codes; the oldest are dropped beyond
	spaRTLifetime = 24 * time.Hour
	rtLifetime    = 90 * 24 * time.Hour
	clockSkew     = 5 * time.Minute
)

// Config configures a [Server]. The zero value is usable: the default
// directory, base URL https://127.0.0.1:7070, keys in memory.
type Config struct {
	// BaseURL is the one canonical URL every issuer and endpoint derives from,
	// whatever Host a request names. It must be https.
	BaseURL string
	// Directory is the world served; nil means [DefaultDirectory].
	Directory *Directory
	// StateDir keeps the CA and signing keys across restarts; "" keeps them in memory.
	StateDir string
	// TokenLifetime of access tokens; 0 means one hour. MSAL treats tokens
	// that expire within five minutes as expired, so keep it above that.
	TokenLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per request outcome; nil discards.
	Logger *slog.Logger
}

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	base      *url.URL
	baseStr   string
	dir       *Directory
	ca        *authority
	tlsCert   tls.Certificate
	keys      *keyRing
	sealKey   []byte // seals refresh tokens and sign-in sessions
	now       func() time.Time
	lifetime  time.Duration
	log       *slog.Logger
	mux       *http.ServeMux
	transport *http.Transport
	started   time.Time   // for Health's uptime
	devices   deviceStore // device code flows (devicecode.go)

	mu        sync.Mutex
	codes     map[string]*authCode
	codeOrder []string            // codes by age, for eviction
	consents  map[string][]string // user consents given on the sign-in page: "client resource oid" → scopes
	controls  controls
	stats     Stats

	refusedRefreshTokens int // under mu; see RefuseRefreshTokens
}

// New creates a Server: it loads or creates the CA and signing keys in
// cfg.StateDir, and issues a server certificate for the loopback names.
func New(cfg Config) (*Server, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" || base.Path != "" || base.User != nil ||
		base.RawQuery != "" || base.ForceQuery || base.Fragment != "" || strings.Contains(cfg.BaseURL, "#") {
		return nil, fmt.Errorf("entra: base URL %q must be https://host[:port] with no path, query, fragment or user", cfg.BaseURL)
	}
	if cfg.Directory == nil {
		cfg.Directory = DefaultDirectory()
	} else if err := cfg.Directory.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		base: base, baseStr: base.String(), dir: cfg.Directory, now: cfg.Now,
		lifetime: cfg.TokenLifetime, log: cfg.Logger, codes: map[string]*authCode{}, consents: map[string][]string{},
	}
	s.stats.reset()
	now := s.now()
	s.started = now
	if s.ca, err = loadOrCreateCA(cfg.StateDir, now); err != nil {
		return nil, err
	}
	if s.tlsCert, err = s.ca.serverCertificate(now); err != nil {
		return nil, err
	}
	if s.keys, err = loadOrCreateKeys(cfg.StateDir, now); err != nil {
		return nil, err
	}
	// The seal key derives from the CA key so sessions and refresh tokens,
	// like access tokens, survive a restart with the same state directory.
	if s.sealKey, err = sealKeyFrom(s.ca.key); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}
	s.transport = tr
	s.routes()
	return s, nil
}

// BaseURL is the canonical base URL, e.g. https://127.0.0.1:7070.
func (s *Server) BaseURL() string { return s.baseStr }

// Authority is the authority URL MSAL takes for a tenant (id, domain,
// "organizations" or "common").
func (s *Server) Authority(tenant string) string { return s.baseStr + "/" + tenant }

// Issuer is the v2 issuer of tokens of the tenant.
func (s *Server) Issuer(tenantID string) string { return s.baseStr + "/" + tenantID + "/v2.0" }

// IssuerV1 is the v1 issuer, the emulator's stand-in for https://sts.windows.net/{tid}/.
func (s *Server) IssuerV1(tenantID string) string { return s.baseStr + "/" + tenantID + "/" }

// Directory is the directory served. Do not modify it.
func (s *Server) Directory() *Directory { return s.dir }

// CAPEM is the CA certificate as PEM, for clients to trust.
func (s *Server) CAPEM() []byte { return s.ca.pem }

// CertPool holds the emulator's CA alone.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.cert)
	return p
}

// TLSConfig serves the emulator's loopback certificate.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12}
}

// HTTPClient returns a client that trusts the emulator's CA and nothing else.
// Every client it returns shares one transport, whose idle connections are
// closed when the server shuts down (an HTTP/2 server otherwise waits a
// second for each client to hang up).
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: s.transport, Timeout: 30 * time.Second}
}

// ServeTLS serves the emulator on l until ctx ends, then shuts down gracefully.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener) error {
	return serve.TLS(ctx, l, s, s.TLSConfig(), s.log, s.transport.CloseIdleConnections)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.cors(s.handleDiscovery(2)))
	m.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.cors(s.handleDiscovery(1)))
	m.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.cors(s.handleKeys(2)))
	m.HandleFunc("GET /{tenant}/discovery/keys", s.cors(s.handleKeys(1)))
	m.HandleFunc("GET /common/UserRealm/{user}", s.cors(s.handleUserRealm))
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.cors(s.handleToken))
	m.HandleFunc("OPTIONS /{tenant}/", s.cors(func(w http.ResponseWriter, r *http.Request) {}))
	// The admin routes are for local tools, never for web pages: their
	// preflights get no grant (the catch-all above would match them).
	m.HandleFunc("OPTIONS "+adminPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "admin endpoints answer no cross-origin requests"})
	})
	m.HandleFunc("OPTIONS /common/UserRealm/{user}", s.cors(func(w http.ResponseWriter, r *http.Request) {}))
	m.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.handleAuthorizePage)
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", s.handleAuthorizeSubmit)
	m.HandleFunc("GET /{tenant}/oauth2/v2.0/logout", s.handleLogout)
	m.HandleFunc("GET /msi/token", s.handleManagedIdentity)
	s.adminRoutes(m)
	m.HandleFunc("POST /_emulator/token", s.handleMint) // mint.go; no CORS, as every admin route
	m.HandleFunc("OPTIONS /_emulator/token", refusePreflight)
	m.HandleFunc("GET /health", s.handleHealth)                               // health.go
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode) // devicecode.go
	m.HandleFunc("GET /devicelogin", s.handleDeviceLoginPage)
	m.HandleFunc("POST /devicelogin", s.handleDeviceLoginCode)
	m.HandleFunc("POST /devicelogin/signin", s.handleDeviceLoginSignIn)
	m.HandleFunc("GET /{$}", s.handleDirectoryPage) // page.go; loopback only
	s.refusalRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "The emulator serves no endpoint at " + r.URL.Path})
	})
	s.mux = m
}

// cors lets browser clients (MSAL.js) read the discovery, keys and token
// endpoints from any origin, as Entra does. It never grants the admin
// routes, whatever route it wraps.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !strings.HasPrefix(r.URL.Path, adminPrefix) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
				w.Header().Set("Access-Control-Max-Age", "86400")
			}
			w.Header().Set("Access-Control-Expose-Headers", "client-request-id, x-ms-request-id")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

// tenantRef is the tenant segment of a request path, resolved.
type tenantRef struct {
	segment string  // as requested
	tenant  *Tenant // nil for organizations/common
}

func (s *Server) resolveTenant(segment string) (tenantRef, *stsError) {
	switch strings.ToLower(segment) {
	case "organizations", "common":
		return tenantRef{segment: strings.ToLower(segment)}, nil
	}
	if t := s.dir.Tenant(strings.ToLower(segment)); t != nil {
		return tenantRef{segment: segment, tenant: t}, nil
	}
	return tenantRef{}, errTenantNotFound(segment)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeSTSError answers with Entra's error body.
func (s *Server) writeSTSError(w http.ResponseWriter, r *http.Request, e *stsError) {
	now := s.now().UTC()
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = newGUID()
	}
	body := map[string]any{
		"error":             e.oauth,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", e.code, e.desc, newGUID(), corr, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{e.code},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          newGUID(),
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("%s/error?code=%d", s.baseStr, e.code),
	}
	if e.suberror != "" {
		body["suberror"] = e.suberror
	}
	if e.claims != "" {
		body["claims"] = e.claims
	}
	s.log.Info("token request refused", "path", r.URL.Path, "error", e.oauth, "code", e.code, "correlation_id", corr)
	writeJSON(w, e.status, body)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64(b)
}
