package entra

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// Endpoint names for [Stats] and the failure controls.
const (
	EndpointDiscovery       = "discovery"
	EndpointJWKS            = "jwks"
	EndpointToken           = "token"
	EndpointAuthorize       = "authorize"
	EndpointUserRealm       = "userrealm"
	EndpointManagedIdentity = "managed_identity"
)

// Grant names for [Stats].
const (
	GrantClientCredentials = "client_credentials"
	GrantOnBehalfOf        = "on_behalf_of"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantPassword          = "password"
)

// Stats counts requests since start or the last [Server.ResetStats].
type Stats struct {
	// Requests by endpoint (Endpoint* constants).
	Requests map[string]int64 `json:"requests"`
	// Grants counts token requests by grant (Grant* constants).
	Grants map[string]int64 `json:"grants"`
	// GrantsByTenant counts token requests by grant, then by the tenant
	// segment of the authority as requested ("organizations", a tenant id, ...).
	GrantsByTenant map[string]map[string]int64 `json:"grants_by_tenant"`
	// Issued counts access tokens issued, by grant.
	Issued map[string]int64 `json:"issued"`
	// Credentials counts successful client authentications by credential:
	// "{clientId}/secret/{secretId}", "{clientId}/certificate/{certId}" or
	// "{clientId}/federated/{credentialName}", so tests can see which one a
	// client used (after a rotation, say).
	Credentials map[string]int64 `json:"credentials"`
}

func (st *Stats) reset() {
	*st = Stats{Requests: map[string]int64{}, Grants: map[string]int64{}, GrantsByTenant: map[string]map[string]int64{}, Issued: map[string]int64{}, Credentials: map[string]int64{}}
}

func (st Stats) clone() Stats {
	c := Stats{Requests: maps.Clone(st.Requests), Grants: maps.Clone(st.Grants), GrantsByTenant: map[string]map[string]int64{}, Issued: maps.Clone(st.Issued), Credentials: maps.Clone(st.Credentials)}
	for k, v := range st.GrantsByTenant {
		c.GrantsByTenant[k] = maps.Clone(v)
	}
	return c
}

type controls struct {
	tokenLatency   time.Duration
	latencyChanged chan struct{} // closed when tokenLatency changes
	failTokens     int
	failGrant      string // "" fails any grant
	failJWKS       int
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	s.stats.Requests[endpoint]++
	s.mu.Unlock()
}

func (s *Server) countGrant(grant, tenantSegment string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Grants[grant]++
	if s.stats.GrantsByTenant[grant] == nil {
		s.stats.GrantsByTenant[grant] = map[string]int64{}
	}
	s.stats.GrantsByTenant[grant][strings.ToLower(tenantSegment)]++
}

func (s *Server) countCredential(name string) {
	s.mu.Lock()
	s.stats.Credentials[name]++
	s.mu.Unlock()
}

func (s *Server) countIssued(grant string) {
	s.mu.Lock()
	s.stats.Issued[grant]++
	s.mu.Unlock()
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats.reset()
	s.mu.Unlock()
}

// FailTokenRequests makes the next n token requests of the given grant (""
// for any) fail with 503 temporarily_unavailable; n = 0 clears it.
func (s *Server) FailTokenRequests(n int, grant string) {
	s.mu.Lock()
	s.controls.failTokens, s.controls.failGrant = n, grant
	s.mu.Unlock()
}

// FailJWKSRequests makes the next n key requests fail with 503.
func (s *Server) FailJWKSRequests(n int) {
	s.mu.Lock()
	s.controls.failJWKS = n
	s.mu.Unlock()
}

// SetTokenLatency delays every token request by d (0 for none). Requests
// already waiting wait for the new latency instead (so lifting it releases them).
func (s *Server) SetTokenLatency(d time.Duration) {
	s.mu.Lock()
	s.controls.tokenLatency = d
	if s.controls.latencyChanged != nil {
		close(s.controls.latencyChanged)
	}
	s.controls.latencyChanged = make(chan struct{})
	s.mu.Unlock()
}

// RotateSigningKeys publishes a new signing key and signs with it from now
// on. Earlier keys stay published (at most three in all), as Entra keeps
// them through a rollover.
func (s *Server) RotateSigningKeys() error { return s.keys.rotate(s.now()) }

// RetireOldSigningKeys unpublishes every key but the current signing key,
// so tokens signed by them stop verifying.
func (s *Server) RetireOldSigningKeys() error { return s.keys.retire() }

// SigningKeyID is the kid of the key that signs new tokens.
func (s *Server) SigningKeyID() string { return s.keys.signer().kid }

// takeFailure consumes one injected failure for endpoint (and grant), if any.
func (s *Server) takeFailure(endpoint, grant string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch endpoint {
	case EndpointJWKS:
		if s.controls.failJWKS > 0 {
			s.controls.failJWKS--
			return true
		}
	case EndpointToken:
		if s.controls.failTokens > 0 && (s.controls.failGrant == "" || s.controls.failGrant == grant) {
			s.controls.failTokens--
			return true
		}
	}
	return false
}

func (s *Server) tokenDelay(ctx context.Context) {
	start := time.Now()
	for {
		s.mu.Lock()
		d, changed := s.controls.tokenLatency, s.controls.latencyChanged
		s.mu.Unlock()
		left := d - time.Since(start)
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
			t.Stop()
		}
	}
}

// AdminHeader must be present on admin requests: a custom header makes a
// browser preflight, which the admin endpoints never grant, so no web page
// can drive them.
const AdminHeader = "X-Emulator-Admin"

// adminPrefix is where the admin routes live. No response under it carries
// an Access-Control-Allow-* header.
const adminPrefix = "/_emulator/"

// adminRoutes serve the test controls over HTTP for black-box tests, to
// loopback callers only, and never to a web page (no CORS):
//
//	GET  /_emulator/stats                   the counters (JSON Stats)
//	POST /_emulator/stats/reset
//	POST /_emulator/keys/rotate             {"retire_old": bool}
//	POST /_emulator/fail                    {"endpoint": "token"|"jwks", "count": n, "grant": ""}
//	POST /_emulator/latency                 {"token_ms": n}
//
// refusalRoutes (refusal.go) adds POST /_emulator/refresh-tokens/refuse.
func (s *Server) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_emulator/stats", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Stats())
		return nil
	}))
	m.HandleFunc("POST /_emulator/stats/reset", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		s.ResetStats()
		return nil
	}))
	m.HandleFunc("POST /_emulator/keys/rotate", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			RetireOld bool `json:"retire_old"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return err
		}
		if err := s.RotateSigningKeys(); err != nil {
			return err
		}
		if req.RetireOld {
			return s.RetireOldSigningKeys()
		}
		return nil
	}))
	m.HandleFunc("POST /_emulator/fail", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Endpoint string `json:"endpoint"`
			Count    int    `json:"count"`
			Grant    string `json:"grant"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return err
		}
		if req.Count < 0 {
			return fmt.Errorf("count must be 0 or more")
		}
		switch req.Endpoint {
		case EndpointToken:
			s.FailTokenRequests(req.Count, req.Grant)
		case EndpointJWKS:
			s.FailJWKSRequests(req.Count)
		default:
			return fmt.Errorf("endpoint must be %q or %q", EndpointToken, EndpointJWKS)
		}
		return nil
	}))
	m.HandleFunc("POST /_emulator/latency", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			TokenMS int `json:"token_ms"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return err
		}
		if req.TokenMS < 0 || req.TokenMS > 600_000 {
			return fmt.Errorf("token_ms must be between 0 and 600000")
		}
		s.SetTokenLatency(time.Duration(req.TokenMS) * time.Millisecond)
		return nil
	}))
}

func (s *Server) admin(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if msg := adminRefusal(r); msg != "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": msg})
			return
		}
		if err := h(w, r); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// SignToken signs arbitrary claims with the current signing key, with
// Entra's header. It is a test control for building tokens no real flow
// would issue (expired, wrong audience, foreign issuer) that still carry a
// valid signature, so a validator's claim checks can be tested one by one.
func (s *Server) SignToken(claims map[string]any) (string, error) {
	return signJWT(s.keys.signer(), claims)
}
