package entraauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// maxMetadata mirrors the validator's bound on a metadata document (1 MiB).
const maxMetadata = 1 << 20

// wantUnavailable checks that err is ErrUnavailable saying why.
func wantUnavailable(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, entraauth.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error = %q, want it to say %q", err, reason)
	}
}

// TestJWKSURIHostPin: metadata that points jwks_uri at another host is
// refused, and that host is never asked, even though the keys it serves
// would verify the token presented.
func TestJWKSURIHostPin(t *testing.T) {
	a := newTestAuthority(t)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	// The same TLS certificate as the authority's (httptest's), so only
	// the pin can stop the validator from trusting these keys.
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		json.NewEncoder(w).Encode(jwks("evil", &attacker.PublicKey))
	}))
	defer evil.Close()
	tok := a.signWith(t, attacker, map[string]any{"alg": "RS256", "kid": "evil"}, a.claims())

	for name, jwksURI := range map[string]string{
		"another host (port) of the loopback": evil.URL + "/keys",
		"plain http on the host":              strings.Replace(a.base(), "https://", "http://", 1) + jwksPath,
		"userinfo trick":                      "https://" + strings.TrimPrefix(a.base(), "https://") + "@" + strings.TrimPrefix(evil.URL, "https://") + "/keys",
		"not a URL":                           "https://%zz",
	} {
		t.Run(name, func(t *testing.T) {
			a.setMetadata(false, mustJSON(t, map[string]any{"issuer": a.base() + "/{tenantid}/v2.0", "jwks_uri": jwksURI}))
			v := a.validator(t, entraauth.Config{})
			_, err := v.Validate(context.Background(), tok)
			wantUnavailable(t, err, "is not on the authority's host")
		})
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the foreign jwks_uri was fetched %d times", n)
	}
}

// TestMalformedMetadata: discovery fails closed, saying why, on any
// document that is not the authority's metadata.
func TestMalformedMetadata(t *testing.T) {
	a := newTestAuthority(t)
	good := func() map[string]any {
		return map[string]any{"issuer": a.base() + "/{tenantid}/v2.0", "jwks_uri": a.base() + jwksPath}
	}
	oversize := good()
	oversize["padding"] = strings.Repeat("A", maxMetadata)
	tests := []struct {
		name   string
		v1     bool // the v1 document is the bad one (and AcceptV1 is set)
		doc    []byte
		reason string
	}{
		{"issuer missing", false, mustJSON(t, map[string]any{"jwks_uri": a.base() + jwksPath}), "has no {tenantid} template"},
		{"issuer without the tenant template", false, mustJSON(t, edit(good(), map[string]any{"issuer": a.base() + "/common/v2.0"})), "has no {tenantid} template"},
		{"jwks_uri missing", false, mustJSON(t, edit(good(), map[string]any{"jwks_uri": nil})), "is not on the authority's host"},
		{"bad JSON", false, []byte(`{"issuer": `), "unexpected EOF"},
		{"not an object", false, []byte(`["issuer"]`), "cannot unmarshal"},
		{"issuer of the wrong type", false, []byte(`{"issuer": 42}`), "cannot unmarshal"},
		{"oversize", false, mustJSON(t, oversize), "too large"},
		{"v1 issuer missing", true, mustJSON(t, map[string]any{"jwks_uri": a.base() + jwksPath}), "v1 metadata issuer"},
		{"v1 bad JSON", true, []byte(`{`), "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.setMetadata(tt.v1, tt.doc)
			defer a.setMetadata(tt.v1, mustJSON(t, good()))
			v := a.validator(t, entraauth.Config{AcceptV1: tt.v1})
			_, err := v.Validate(context.Background(), a.token(t, nil, nil))
			wantUnavailable(t, err, tt.reason)
		})
	}
	// Just under the bound is read: the limit is the one named.
	t.Run("just under the bound", func(t *testing.T) {
		doc := good()
		doc["padding"] = ""
		pad := maxMetadata - len(mustJSON(t, doc)) - 1
		doc["padding"] = strings.Repeat("A", pad)
		a.setMetadata(false, mustJSON(t, doc))
		if _, err := a.validator(t, entraauth.Config{}).Validate(context.Background(), a.token(t, nil, nil)); err != nil {
			t.Fatalf("a %d-byte document: %v", len(mustJSON(t, doc)), err)
		}
	})
}

// TestMetadataStatus: an error status from the authority is unavailability.
func TestMetadataStatus(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"issuer":"x"}`, http.StatusInternalServerError)
	}))
	defer srv.Close()
	v, err := entraauth.New(t.Context(), srv.URL, entraauth.Config{ClientID: authClientID, TenantIDs: []string{authTenant}, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAuthority(t)
	_, err = v.Validate(context.Background(), a.token(t, nil, nil))
	wantUnavailable(t, err, "500 Internal Server Error")
}
