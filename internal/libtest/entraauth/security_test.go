package entraauth_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

var (
	taskAPIScope = "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	allowed      = []string{entra.HomeTenantID, entra.SecondTenantID}
)

// fixture is an emulator, tokens from it obtained by the real MSAL clients,
// and a validator for the Task API trusting it.
type fixture struct {
	srv     *entra.Server
	v       *entraauth.Validator
	alice   string // token A: delegated, scp access_as_user, roles Admin
	frank   string // a valid token of a tenant on no allow-list
	appOnly string // app-only token to the Task API (operator app), no roles
	notifyB string // token B: OBO token for the Notification Service
}

func newFixture(t testing.TB, cfg entraauth.Config) *fixture {
	t.Helper()
	f := &fixture{srv: entratest.Start(t, entra.Config{})}
	f.alice = passwordToken(t, f.srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	f.frank = passwordToken(t, f.srv, entra.ThirdTenantID, "frank@northwind.handoff.test", taskAPIScope)
	op := secretClient(t, f.srv, entra.OperatorClientID, entra.OperatorSecret)
	res, err := op.AcquireTokenByCredential(context.Background(), []string{entra.TaskAPIClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	f.appOnly = res.AccessToken
	task := secretClient(t, f.srv, entra.TaskAPIClientID, entra.TaskAPISecret)
	obo, err := task.AcquireTokenOnBehalfOf(context.Background(), f.alice, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	f.notifyB = obo.AccessToken
	f.v = newValidator(t, f.srv, cfg)
	return f
}

func newValidator(t testing.TB, srv *entra.Server, cfg entraauth.Config) *entraauth.Validator {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = entra.TaskAPIClientID
	}
	if cfg.TenantIDs == nil && !cfg.AllowAnyTenant {
		cfg.TenantIDs = allowed
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = srv.HTTPClient()
	}
	v, err := entraauth.New(t.Context(), srv.BaseURL(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func secretClient(t testing.TB, srv *entra.Server, clientID, secret string) confidential.Client {
	t.Helper()
	cred, _ := confidential.NewCredFromSecret(secret)
	c, err := confidential.New(srv.Authority(entra.HomeTenantID), clientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func passwordToken(t testing.TB, srv *entra.Server, tenant, user string, scopes ...string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(tenant)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), scopes, user, entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// claimsOf decodes a token's payload.
func claimsOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	var c map[string]any
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("decode claims: %v", err)
	}
	return c
}

func seg(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signRS256 signs header and claims with key: a token built by an attacker
// who holds some RSA key, but not the authority's.
func signRS256(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := seg(t, header) + "." + seg(t, claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// with returns alice's claims changed by edits, signed by the emulator: a
// validly signed token whose claims a check must refuse.
func (f *fixture) with(t testing.TB, edits map[string]any) string {
	t.Helper()
	c := claimsOf(t, f.alice)
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := f.srv.SignToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSecuritySuite: every case is a request an attacker (or a confused
// client) would send; each must be refused with the right status.
func TestSecuritySuite(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)
	kid := headerOf(t, f.alice)["kid"]
	now := time.Now()
	// A server the token's own headers point at; it must never be called.
	var lured atomic.Int64
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lured.Add(1) }))
	defer lure.Close()
	aliceParts := strings.Split(f.alice, ".")
	emuPub := firstPublicKeyPEM(t, f.srv)

	delegated := f.v.Protect(okHandler(), entraauth.Scopes(entra.ScopeAccessAsUser))
	appOnly := f.v.Protect(okHandler(), entraauth.AppPermissions(entra.RoleAuditWrite))
	onlyDevClient := f.v.Protect(okHandler(), entraauth.Scopes(entra.ScopeAccessAsUser), entraauth.CallerApps(entra.SPAClientID))

	tests := []struct {
		name    string
		handler http.Handler
		req     func() *http.Request
		status  int
		errCode string // WWW-Authenticate error, "" for none expected
	}{
		{"valid token A", delegated, bearer(f.alice), 200, ""},
		{"alg none", delegated, bearer(seg(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + aliceParts[1] + "."), 401, "invalid_token"},
		{"alg none with the original signature", delegated, bearer(seg(t, map[string]any{"alg": "none", "kid": kid}) + "." + aliceParts[1] + "." + aliceParts[2]), 401, "invalid_token"},
		{"HS256 keyed with the authority's public key", delegated, bearer(hs256(t, emuPub, map[string]any{"alg": "HS256", "kid": kid}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"RS256 from an unknown key", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": "attacker-key"}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"RS256 from another key under the authority's kid", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": kid}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"payload altered after signing", delegated, bearer(aliceParts[0] + "." + seg(t, merge(claimsOf(t, f.alice), map[string]any{"roles": []string{"Admin", "Owner"}})) + "." + aliceParts[2]), 401, "invalid_token"},
		{"signature stripped", delegated, bearer(aliceParts[0] + "." + aliceParts[1] + "."), 401, "invalid_token"},
		{"expired", delegated, bearer(f.with(t, map[string]any{"exp": now.Add(-10 * time.Minute).Unix(), "iat": now.Add(-70 * time.Minute).Unix(), "nbf": now.Add(-70 * time.Minute).Unix()})), 401, "invalid_token"},
		{"nbf in the future", delegated, bearer(f.with(t, map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), 401, "invalid_token"},
		{"no exp", delegated, bearer(f.with(t, map[string]any{"exp": nil})), 401, "invalid_token"},
		{"no nbf", delegated, bearer(f.with(t, map[string]any{"nbf": nil})), 401, "invalid_token"},
		{"exp as a string", delegated, bearer(f.with(t, map[string]any{"exp": "9999999999"})), 401, "invalid_token"},
		{"wrong aud", delegated, bearer(f.with(t, map[string]any{"aud": "6e9c4d7a-0000-4000-8000-000000000099"})), 401, "invalid_token"},
		{"aud of another app in the same tenant (token B)", delegated, bearer(f.notifyB), 401, "invalid_token"},
		{"issuer of another tenant than tid", delegated, bearer(f.with(t, map[string]any{"iss": f.srv.Issuer(entra.SecondTenantID)})), 401, "invalid_token"},
		{"issuer on another host", delegated, bearer(f.with(t, map[string]any{"iss": "https://login.microsoftonline.com/" + entra.HomeTenantID + "/v2.0"})), 401, "invalid_token"},
		{"tid not allowed (frank, a real token)", delegated, bearer(f.frank), 401, "invalid_token"},
		{"tid missing", delegated, bearer(f.with(t, map[string]any{"tid": nil})), 401, "invalid_token"},
		{"tid not a GUID", delegated, bearer(f.with(t, map[string]any{"tid": "common", "iss": f.srv.BaseURL() + "/common/v2.0"})), 401, "invalid_token"},
		{"v1 token where only v2 is accepted", delegated, bearer(f.with(t, map[string]any{"ver": "1.0", "iss": f.srv.IssuerV1(entra.HomeTenantID)})), 401, "invalid_token"},
		{"no ver", delegated, bearer(f.with(t, map[string]any{"ver": nil})), 401, "invalid_token"},
		{"delegated token without the required scope", delegated, bearer(f.with(t, map[string]any{"scp": "tasks.read"})), 403, "insufficient_scope"},
		{"app-only token at a delegated endpoint", delegated, bearer(f.appOnly), 403, "insufficient_scope"},
		{"delegated token with roles at an app-only endpoint", appOnly, bearer(f.with(t, map[string]any{"roles": []string{entra.RoleAuditWrite}})), 403, "insufficient_scope"},
		{"delegated token without idtyp but with roles at an app-only endpoint", appOnly, bearer(f.with(t, map[string]any{"idtyp": nil, "roles": []string{entra.RoleAuditWrite}})), 403, "insufficient_scope"},
		{"token claiming idtyp app while carrying scp", delegated, bearer(f.with(t, map[string]any{"idtyp": "app"})), 401, "invalid_token"},
		{"caller app not on the allow-list", onlyDevClient, bearer(f.alice), 403, "insufficient_scope"},
		{"jku header pointing elsewhere", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": "k1", "jku": lure.URL + "/keys"}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"x5u header pointing elsewhere", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": "k2", "x5u": lure.URL + "/cert"}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"embedded jwk", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": "k3", "jwk": map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(attacker.N.Bytes()), "e": "AQAB"}}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"kid path traversal", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": "../../../../etc/passwd"}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"critical header extension", delegated, bearer(signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": kid, "crit": []string{"exp"}}, claimsOf(t, f.alice))), 401, "invalid_token"},
		{"JWE (five parts)", delegated, bearer(seg(t, map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".a.b.c.d"), 401, "invalid_token"},
		{"garbage", delegated, bearer("not a token at all"), 401, "invalid_token"},
		{"garbage without spaces", delegated, bearer("garbage"), 401, "invalid_token"},
		{"three dots", delegated, bearer("..."), 401, "invalid_token"},
		{"two dots", delegated, bearer(".."), 401, "invalid_token"},
		{"empty bearer", delegated, bearer(""), 401, "invalid_token"},
		{"oversized", delegated, bearer(f.alice + strings.Repeat("A", entraauth.MaxTokenSize)), 401, "invalid_token"},
		{"no Authorization header", delegated, func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, 401, ""},
		{"Basic scheme", delegated, header("Basic YWxpY2U6cGFzcw=="), 401, "invalid_request"},
		{"scheme in odd case works", delegated, header("bEaReR " + f.alice), 200, ""},
		{"duplicate Authorization headers", delegated, func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Add("Authorization", "Bearer "+f.alice)
			r.Header.Add("Authorization", "Bearer "+f.alice)
			return r
		}, 400, "invalid_request"},
		{"token in the query string", delegated, func() *http.Request {
			return httptest.NewRequest("GET", "/?access_token="+f.alice, nil)
		}, 401, "invalid_token"},
		{"app-only token with the permission", f.v.Protect(okHandler(), entraauth.AppPermissions("nothing")), bearer(f.appOnly), 403, "insufficient_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, tt.req())
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["status"] != float64(tt.status) {
				t.Errorf("problem body = %s", rec.Body)
			}
			challenge := rec.Header().Get("WWW-Authenticate")
			if tt.status != 400 && !strings.HasPrefix(challenge, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			if tt.errCode != "" && tt.status != 400 && !strings.Contains(challenge, `error="`+tt.errCode+`"`) {
				t.Errorf("WWW-Authenticate = %q, want error=%q", challenge, tt.errCode)
			}
			if tt.status == 403 && tt.name != "caller app not on the allow-list" && !strings.Contains(challenge, `scope="`) {
				t.Errorf("403 without the required scope: %q", challenge)
			}
			if strings.Contains(rec.Body.String(), "eyJ") || strings.Contains(challenge, "eyJ") {
				t.Error("a token fragment leaked into the response")
			}
		})
	}
	if lured.Load() != 0 {
		t.Errorf("the validator fetched a URL named by a token header %d times", lured.Load())
	}
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := entraauth.FromContext(r.Context()); !ok {
			http.Error(w, "no identity", 500)
		}
	})
}

func bearer(tok string) func() *http.Request { return header("Bearer " + tok) }

func header(v string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", v)
		return r
	}
}

func headerOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	var h map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func hs256(t testing.TB, secret []byte, header, claims map[string]any) string {
	input := seg(t, header) + "." + seg(t, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// firstPublicKeyPEM is the authority's signing key as PEM, the secret an
// algorithm-confusion attack would use.
func firstPublicKeyPEM(t testing.TB, srv *entra.Server) []byte {
	t.Helper()
	resp, err := srv.HTTPClient().Get(srv.BaseURL() + "/common/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			X5c []string `json:"x5c"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(set.Keys[0].X5c[0])
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}

func splitToken(tok string) []string { return strings.Split(tok, ".") }

func itoa(i int) string { return strconv.Itoa(i) }

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }
