// Package keyvault is a local emulator of Azure Key Vault's secrets API,
// enough of it for the real azsecrets client:
//
//	GET /secrets                     list secrets (ids without versions), 25 a page
//	GET /secrets/{name}[/]           the current version
//	GET /secrets/{name}/{version}    a version (32 lowercase hex characters)
//	GET /secrets/{name}/versions     a secret's versions, oldest first, 25 a page
//	PUT /secrets/{name}              a new version, current from now on
//
// every one with an api-version query parameter (any version is accepted).
// The body of a set is {"value", "contentType", "tags", "attributes":
// {"enabled", "nbf", "exp"}}; other properties are ignored. Answers carry
// Key Vault's secret JSON, timestamps as integer Unix seconds.
//
// Authentication is Key Vault's challenge: a request without a token is
// answered 401 with
//
//	WWW-Authenticate: Bearer authorization="{Authority}/{TenantID}", resource="https://vault.azure.net"
//
// and the client retries with a token for https://vault.azure.net/.default
// from that tenant, which [entraauth] validates (v1 or v2; audience
// https://vault.azure.net or Key Vault's app id; the vault's tenant only).
// Authorization is by the token's oid: [Config.Readers] may get and list,
// [Config.Writers] may also set.
//
// Errors are Key Vault's {"error": {"code", "message", "innererror"}}:
//
//	400 BadParameter       no api-version, a bad name, a bad body, a value over 25 KiB, more than
//	                       15 tags, two Authorization headers
//	400 QuotaExceeded      beyond MaxSecrets secrets or MaxStoredBytes of values
//	401 Unauthorized       no token, or a token refused (with the challenge)
//	403 Forbidden          no role for the action (innererror ForbiddenByRbac; the message
//	                       names appid, oid and the action), or a disabled secret (SecretDisabled)
//	404 SecretNotFound     no such secret or version
//	413 RequestEntityTooLarge  a body over 64 KiB
//	501 NotImplemented     anything else
//	503 ServiceUnavailable the authority's metadata or keys cannot be had (Retry-After)
//
// It is for development and tests only. Secrets live in memory. What it does
// not emulate: delete, recover, purge, backup, restore, update of
// properties, keys and certificates, access policies, network rules,
// managed HSM, throttling; nbf and exp are stored and echoed but, as in Key
// Vault, do not stop a get.
//
// The real client needs https, so a [Server] is served with TLS
// ([Server.ServeTLS]); a vault at 127.0.0.1 is not under vault.azure.net, so
// clients must set azsecrets.ClientOptions.DisableChallengeResourceVerification.
// In Go tests, keyvaulttest.Start serves one next to an Entra emulator.
package keyvault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/internal/serve"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// Resource is Key Vault's resource URI: the audience of its tokens and the
// resource its challenge names.
const Resource = "https://vault.azure.net"

// Limits of what the emulator accepts and keeps. Every store is bounded.
const (
	// MaxBodyBytes bounds a request body; larger bodies are answered 413.
	MaxBodyBytes = 64 << 10
	// MaxValueBytes bounds a secret value (UTF-8 bytes), as Key Vault does (25 KiB).
	MaxValueBytes = 25 << 10
	// MaxVersions is how many versions of a secret are kept; setting one
	// more forgets the oldest (Key Vault keeps them all).
	MaxVersions = 100
	// MaxSecrets bounds the number of secret names; a set that would create
	// one more is refused with 400 QuotaExceeded.
	MaxSecrets = 1000
	// MaxStoredBytes bounds the sum of all kept values; a set beyond it is
	// refused with 400 QuotaExceeded.
	MaxStoredBytes = 64 << 20
	// MaxTags bounds a secret's tags, as Key Vault does (15); tag names are
	// at most 512 characters and values 256.
	MaxTags = 15
	// MaxContentTypeBytes bounds a secret's content type.
	MaxContentTypeBytes = 255
	// PageSize is the most items a list page holds (Key Vault's maxresults
	// limit); a request may ask for fewer with maxresults.
	PageSize = 25
)

// nameRE is what Key Vault allows as a secret name. Names are case-insensitive.
var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// Config configures a [Server].
type Config struct {
	// BaseURL is the canonical https base URL of the vault, e.g.
	// https://127.0.0.1:7074. Secret ids and next links derive from it,
	// never from a request's Host.
	BaseURL string
	// Authority is the Entra base URL that issues the tokens accepted and
	// that the challenge names, e.g. https://127.0.0.1:7070.
	Authority string
	// TenantID is the vault's tenant: the challenge names it and only its
	// tokens are accepted.
	TenantID string
	// HTTPClient fetches the authority's metadata and keys; it must trust the
	// authority's CA (entra.Server.HTTPClient does). nil means a default client.
	HTTPClient *http.Client
	// Secrets are seeded at start, one version each.
	Secrets map[string]string
	// Readers are object ids (the token's oid: a user, a service principal,
	// a managed identity) granted Key Vault Secrets User: get and list.
	Readers []string
	// Writers are object ids granted Key Vault Secrets Officer: get, list and set.
	Writers []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per refused request (never a token or a
	// value); nil discards.
	Logger *slog.Logger
}

// Stats counts requests since start or the last [Server.ResetStats].
type Stats struct {
	// Challenges counts requests without a token, answered 401 with the challenge.
	Challenges int64
	// Unauthorized counts requests whose token was refused (401).
	Unauthorized int64
	// Forbidden counts authenticated requests refused for want of a role (403).
	Forbidden int64
	// Reads counts authorized get-secret requests, whatever their outcome.
	Reads int64
	// Writes counts authorized set-secret requests, whatever their outcome.
	Writes int64
	// Lists counts authorized list requests (secrets or versions), per page.
	Lists int64
}

// Server is the emulator, an http.Handler. Its methods are safe for concurrent use.
type Server struct {
	base      string // canonical, no trailing slash
	host      string
	challenge string // the WWW-Authenticate value of every 401
	validator *entraauth.Validator
	readers   map[string]bool
	writers   map[string]bool
	now       func() time.Time
	log       *slog.Logger
	store     *store

	mu    sync.Mutex
	stats Stats
}

// New creates a Server. ctx bounds the token validator's background key
// refreshes: cancel it when the server is done. New does no I/O.
func New(ctx context.Context, cfg Config) (*Server, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" || base.Path != "" || base.User != nil ||
		base.RawQuery != "" || base.ForceQuery || base.Fragment != "" || strings.Contains(cfg.BaseURL, "#") {
		return nil, fmt.Errorf("keyvault: base URL %q must be https://host[:port] with no path, query, fragment or user", cfg.BaseURL)
	}
	authority := strings.TrimSuffix(cfg.Authority, "/")
	if authority == "" {
		return nil, errors.New("keyvault: Config.Authority is required")
	}
	if strings.ContainsAny(authority, ` ",=`) {
		return nil, fmt.Errorf("keyvault: authority %q cannot be named in a challenge", authority)
	}
	// entraauth.New checks that the tenant is a GUID.
	tenant := strings.ToLower(strings.TrimSpace(cfg.TenantID))
	v, err := entraauth.New(ctx, authority, entraauth.Config{
		ClientID:       entra.KeyVaultAppID,
		IdentifierURIs: []string{Resource},
		AcceptV1:       true,
		TenantIDs:      []string{tenant},
		HTTPClient:     cfg.HTTPClient,
		Now:            cfg.Now,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		base: base.String(), host: base.Host, validator: v,
		// Key Vault's format, which azsecrets parses by splitting on spaces
		// and '=': no value may contain either.
		challenge: `Bearer authorization="` + authority + "/" + tenant + `", resource="` + Resource + `"`,
		readers:   objectIDs(cfg.Readers),
		writers:   objectIDs(cfg.Writers),
		now:       cfg.Now,
		log:       cfg.Logger,
		store:     newStore(),
	}
	if len(cfg.Secrets) > MaxSecrets {
		return nil, fmt.Errorf("keyvault: %d seeded secrets; at most %d", len(cfg.Secrets), MaxSecrets)
	}
	for name, value := range cfg.Secrets {
		if _, err := s.SetSecret(name, value); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func objectIDs(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[strings.ToLower(strings.TrimSpace(id))] = true
	}
	return m
}

// BaseURL is the vault's canonical base URL, what azsecrets.NewClient takes.
func (s *Server) BaseURL() string { return s.base }

// SetSecret stores value as a new version of the secret name, which becomes
// its current version, as a client's set would; it returns the version. It
// is a test control, for rotating a secret under a running client. Names
// and values are held to the same limits as over HTTP.
func (s *Server) SetSecret(name, value string) (version string, err error) {
	v, _, e := s.store.set(name, setParams{Value: &value}, s.now().Unix())
	if e != nil {
		return "", fmt.Errorf("keyvault: %s", e.message)
	}
	return v.id, nil
}

// Secret returns the current value and version of the secret name, for
// tests to see what clients wrote.
func (s *Server) Secret(name string) (value, version string, ok bool) {
	v, _, found := s.store.get(name, "")
	if !found {
		return "", "", false
	}
	return v.value, v.id, true
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = Stats{}
	s.mu.Unlock()
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// ServeTLS serves the vault on l with tlsConfig until ctx ends, then shuts
// down gracefully: it returns once in-flight requests have finished (or
// after five seconds).
func (s *Server) ServeTLS(ctx context.Context, l net.Listener, tlsConfig *tls.Config) error {
	if tlsConfig == nil {
		return errors.New("keyvault: ServeTLS needs a TLS configuration")
	}
	return serve.TLS(ctx, l, s, tlsConfig.Clone(), s.log, nil)
}
