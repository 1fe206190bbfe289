package entraauth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// Identities of the test authority's world.
const (
	authClientID = "a0000000-0000-4000-8000-0000000000a1"
	authTenant   = "10000000-0000-4000-8000-0000000000b1"
	authOther    = "20000000-0000-4000-8000-0000000000b2"
	authUserOID  = "30000000-0000-4000-8000-0000000000c1"
	authAppID    = "40000000-0000-4000-8000-0000000000d1"
	authKid      = "test-authority-key"
)

// testNow is the fixed instant the validators under test live at.
var testNow = time.Unix(1_800_000_000, 0)

// testAuthority is an OpenID provider of the test's own, over TLS on a
// loopback port: Entra's two tenant-independent metadata documents, its
// JWKS, and the private key it publishes. A test signs any header and any
// claims with the key the validator trusts, so each check after the
// signature is reached by the token built for it (an attacker's key would
// be stopped by the signature check first). The documents can be replaced
// to test discovery.
type testAuthority struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	mu       sync.Mutex
	v2, v1   []byte // the metadata documents served
	keyUse   string // the JWKS "use" of the key: "sig" unless set; "omitted" leaves it out
	jwksSize int    // when set, the JWKS is left-padded with spaces to this many bytes
	requests atomic.Int64
	jwksGets atomic.Int64
	jwksFail atomic.Bool // the JWKS endpoint answers 503
	// jwksHold, when set, holds each JWKS request until it is closed,
	// after telling jwksHeld: a slow key set endpoint.
	jwksHold, jwksHeld chan struct{}
}

const (
	v2MetadataPath = "/common/v2.0/.well-known/openid-configuration"
	v1MetadataPath = "/common/.well-known/openid-configuration"
	jwksPath       = "/common/discovery/v2.0/keys"
)

func newTestAuthority(t testing.TB) *testAuthority {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a := &testAuthority{key: key, kid: authKid}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	a.v2 = mustJSON(t, map[string]any{"issuer": a.base() + "/{tenantid}/v2.0", "jwks_uri": a.base() + jwksPath})
	a.v1 = mustJSON(t, map[string]any{"issuer": a.base() + "/{tenantid}/", "jwks_uri": a.base() + jwksPath})
	return a
}

func (a *testAuthority) base() string { return a.srv.URL }

func (a *testAuthority) serve(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	a.mu.Lock()
	v2, v1, use, size, kid, key := a.v2, a.v1, a.keyUse, a.jwksSize, a.kid, a.key
	hold, held := a.jwksHold, a.jwksHeld
	a.mu.Unlock()
	switch r.URL.Path {
	case v2MetadataPath:
		w.Write(v2)
	case v1MetadataPath:
		w.Write(v1)
	case jwksPath:
		a.jwksGets.Add(1)
		if hold != nil {
			held <- struct{}{}
			<-hold
		}
		if a.jwksFail.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		set := jwks(kid, &key.PublicKey)
		switch key := set["keys"].([]map[string]any)[0]; use {
		case "":
		case "omitted":
			delete(key, "use")
		default:
			key["use"] = use
		}
		doc, _ := json.Marshal(set)
		w.Write(append([]byte(strings.Repeat(" ", max(size-len(doc), 0))), doc...))
	default:
		http.NotFound(w, r)
	}
}

// setMetadata replaces the v2 (or, with v1 set, the v1) metadata document.
func (a *testAuthority) setMetadata(v1 bool, doc []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v1 {
		a.v1 = doc
	} else {
		a.v2 = doc
	}
}

func jwks(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
}

// validator trusts the authority, lives at testNow, and accepts authTenant
// unless cfg says otherwise.
func (a *testAuthority) validator(t testing.TB, cfg entraauth.Config) *entraauth.Validator {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = authClientID
	}
	if cfg.TenantIDs == nil && !cfg.AllowAnyTenant {
		cfg.TenantIDs = []string{authTenant}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	cfg.HTTPClient = a.srv.Client()
	v, err := entraauth.New(t.Context(), a.base(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims are those of a valid v2 delegated token for authClientID at testNow.
func (a *testAuthority) claims() map[string]any {
	return map[string]any{
		"iss": a.base() + "/" + authTenant + "/v2.0", "aud": authClientID, "tid": authTenant,
		"oid": authUserOID, "sub": "pairwise-subject", "azp": authAppID, "scp": "access_as_user",
		"roles": []string{"Admin"}, "ver": "2.0", "name": "Test User",
		"preferred_username": "user@test.example",
		"iat":                testNow.Add(-time.Minute).Unix(), "nbf": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(time.Hour).Unix(),
	}
}

// token is a valid token edited: each entry of headerEdits and claimEdits
// replaces (or, when nil, deletes) a header field or a claim. It is signed
// RS256 with the authority's real key whatever alg the header names.
func (a *testAuthority) token(t testing.TB, headerEdits, claimEdits map[string]any) string {
	t.Helper()
	a.mu.Lock()
	kid, key := a.kid, a.key
	a.mu.Unlock()
	h := map[string]any{"typ": "JWT", "alg": "RS256", "kid": kid}
	return a.signWith(t, key, edit(h, headerEdits), edit(a.claims(), claimEdits))
}

// rotate publishes a new signing key under kid in place of the old one,
// which is retired: tokens signed from now on use the new key.
func (a *testAuthority) rotate(t testing.TB, kid string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kid, a.key = kid, key
}

func (a *testAuthority) signWith(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := seg(t, header) + "." + seg(t, claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func edit(m, edits map[string]any) map[string]any {
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rejection returns the description of the *entraauth.Error err is, or
// fails the test: the reason a token was refused, which names the check.
func rejection(t *testing.T, err error) string {
	t.Helper()
	e, ok := err.(*entraauth.Error)
	if !ok {
		t.Fatalf("error = %v (%T), want a rejection (*entraauth.Error)", err, err)
	}
	if e.Status != http.StatusUnauthorized || e.Code != "invalid_token" {
		t.Errorf("rejection %d %q, want 401 invalid_token", e.Status, e.Code)
	}
	return e.Description
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejected for %q", reason)
	}
	if got := rejection(t, err); !strings.Contains(got, reason) {
		t.Errorf("rejected for %q, want for %q", got, reason)
	}
}

// seg is one JWS segment: v as JSON, base64url without padding.
func seg(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
