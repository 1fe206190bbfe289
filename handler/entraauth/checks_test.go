package entraauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// Reasons the validator gives, one per check: each case below must be
// refused by its own check, not by one that happens to run earlier.
const (
	reasonAlg       = "is not accepted; only RS256"
	reasonCrit      = "critical header extensions"
	reasonNoKid     = "has no kid"
	reasonKid       = "signing key (kid) is not one of the authority's keys"
	reasonSignature = "signature does not verify"
	reasonV1        = "v1 tokens are not accepted"
	reasonVer       = "has no known ver"
	reasonTid       = "tid is missing or not a GUID"
	reasonIssuer    = "issuer is not the authority's issuer for its tenant"
	reasonTenant    = "tenant is not allowed"
	reasonAud       = "not for this API (aud)"
	reasonAudMany   = "more than one audience"
	reasonClaims    = "claims are malformed"
	reasonLifetime  = "lacks exp or nbf"
	reasonExpired   = "has expired"
	reasonNbf       = "not valid yet (nbf)"
	reasonAppOnly   = "app-only but carries delegated scopes"
)

type checkCase struct {
	name   string
	header map[string]any // edits of the valid header
	claims map[string]any // edits of the valid claims
	reason string         // "" for a token that must be accepted
}

// TestEachCheck: tokens signed with the trusted key, so that signature
// verification passes and the check each case is named for is the one
// that refuses it (the reason says which).
func TestEachCheck(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	base := a.base()
	minutes := func(n int) int64 { return testNow.Add(time.Duration(n) * time.Minute).Unix() }
	cases := []checkCase{
		{"valid", nil, nil, ""},
		// The alg pin: the signature is RS256 whatever the header says.
		{"alg none with a signature", map[string]any{"alg": "none"}, nil, `algorithm "none" ` + reasonAlg},
		{"alg HS256", map[string]any{"alg": "HS256"}, nil, `algorithm "HS256" ` + reasonAlg},
		{"alg RS384", map[string]any{"alg": "RS384"}, nil, `algorithm "RS384" ` + reasonAlg},
		{"alg PS256", map[string]any{"alg": "PS256"}, nil, `algorithm "PS256" ` + reasonAlg},
		{"alg ES256", map[string]any{"alg": "ES256"}, nil, `algorithm "ES256" ` + reasonAlg},
		{"alg rs256 in lower case", map[string]any{"alg": "rs256"}, nil, reasonAlg},
		{"alg missing", map[string]any{"alg": nil}, nil, `algorithm "" ` + reasonAlg},
		{"crit naming a claim", map[string]any{"crit": []string{"exp"}}, nil, reasonCrit},
		{"crit naming an extension", map[string]any{"crit": []string{"b64"}, "b64": false}, nil, reasonCrit},
		{"no kid", map[string]any{"kid": nil}, nil, reasonNoKid},
		{"unknown kid", map[string]any{"kid": "not-a-key"}, nil, reasonKid},
		// Versions.
		{"v1 token when AcceptV1 is off", nil, map[string]any{"ver": "1.0", "iss": base + "/" + authTenant + "/"}, reasonV1},
		{"no ver", nil, map[string]any{"ver": nil}, reasonVer},
		{"ver 3.0", nil, map[string]any{"ver": "3.0"}, reasonVer},
		// tid, issuer, tenant.
		{"tid missing", nil, map[string]any{"tid": nil}, reasonTid},
		{"issuer of another tenant than tid", nil, map[string]any{"iss": base + "/" + authOther + "/v2.0"}, reasonIssuer},
		{"issuer on another host", nil, map[string]any{"iss": "https://login.microsoftonline.com/" + authTenant + "/v2.0"}, reasonIssuer},
		{"issuer with a trailing slash", nil, map[string]any{"iss": base + "/" + authTenant + "/v2.0/"}, reasonIssuer},
		{"v2 token with the v1 issuer", nil, map[string]any{"iss": base + "/" + authTenant + "/"}, reasonIssuer},
		{"tenant not allowed", nil, map[string]any{"tid": authOther, "iss": base + "/" + authOther + "/v2.0"}, reasonTenant},
		// Audience.
		{"aud of another API", nil, map[string]any{"aud": "50000000-0000-4000-8000-000000000001"}, reasonAud},
		{"aud as the identifier URI", nil, map[string]any{"aud": "api://" + authClientID}, ""},
		{"aud as an array of this API", nil, map[string]any{"aud": []string{authClientID}}, ""},
		{"aud as an array of another API only", nil, map[string]any{"aud": []string{"50000000-0000-4000-8000-000000000001"}}, reasonAud},
		{"aud as an empty array", nil, map[string]any{"aud": []string{}}, reasonAud},
		{"aud missing", nil, map[string]any{"aud": nil}, reasonAud},
		{"aud as an array of another API and this one", nil, map[string]any{"aud": []string{"50000000-0000-4000-8000-000000000001", authClientID}}, reasonAudMany},
		{"aud as an array of this one and another API", nil, map[string]any{"aud": []string{authClientID, "50000000-0000-4000-8000-000000000001"}}, reasonAudMany},
		{"aud as a number", nil, map[string]any{"aud": 42}, reasonClaims},
		// Lifetime, with the default 5 minutes of skew.
		{"exp 4 minutes ago", nil, map[string]any{"exp": minutes(-4)}, ""},
		{"exp 5 minutes less a second ago", nil, map[string]any{"exp": minutes(-5) + 1}, ""},
		{"exp exactly 5 minutes ago", nil, map[string]any{"exp": minutes(-5)}, reasonExpired},
		{"exp 6 minutes ago", nil, map[string]any{"exp": minutes(-6)}, reasonExpired},
		{"nbf in 4 minutes", nil, map[string]any{"nbf": minutes(4)}, ""},
		{"nbf in exactly 5 minutes", nil, map[string]any{"nbf": minutes(5)}, ""},
		{"nbf in 5 minutes and a second", nil, map[string]any{"nbf": minutes(5) + 1}, reasonNbf},
		{"nbf in 6 minutes", nil, map[string]any{"nbf": minutes(6)}, reasonNbf},
		{"no exp", nil, map[string]any{"exp": nil}, reasonLifetime},
		{"no nbf", nil, map[string]any{"nbf": nil}, reasonLifetime},
		{"exp as a string", nil, map[string]any{"exp": "9999999999"}, reasonClaims},
		// Token kind.
		{"idtyp app with scp", nil, map[string]any{"idtyp": "app"}, reasonAppOnly},
		{"oid == sub with scp", nil, map[string]any{"sub": authUserOID}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := a.token(t, tc.header, tc.claims)
			id, err := v.Validate(context.Background(), tok)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if id.ObjectID != authUserOID || id.TenantID != authTenant {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			wantReason(t, err, tc.reason)
		})
	}
}

// TestTidMustBeAGUID: with every tenant allowed and an issuer that matches
// the tid, only the GUID check stands between a token and acceptance.
func TestTidMustBeAGUID(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{AllowAnyTenant: true})
	for _, tid := range []string{"common", "organizations", "10000000-0000-4000-8000-0000000000B1", "{" + authTenant + "}", "10000000000040008000000000000b1", authTenant + "/x", ""} {
		tok := a.token(t, nil, map[string]any{"tid": tid, "iss": a.base() + "/" + tid + "/v2.0"})
		_, err := v.Validate(context.Background(), tok)
		wantReason(t, err, reasonTid)
	}
	// A GUID of a tenant never seen is accepted: AllowAnyTenant means it.
	tok := a.token(t, nil, map[string]any{"tid": authOther, "iss": a.base() + "/" + authOther + "/v2.0"})
	if id, err := v.Validate(context.Background(), tok); err != nil || id.TenantID != authOther {
		t.Fatalf("another tenant's GUID with AllowAnyTenant: %v", err)
	}
}

// TestV1Gate: a v1 token is accepted only when AcceptV1 is set, and then
// only with the v1 issuer; v2 tokens keep working.
func TestV1Gate(t *testing.T) {
	a := newTestAuthority(t)
	v1 := a.token(t, nil, map[string]any{"ver": "1.0", "iss": a.base() + "/" + authTenant + "/", "appid": authAppID, "azp": nil,
		"upn": "user@test.example", "preferred_username": nil})
	_, err := a.validator(t, entraauth.Config{}).Validate(context.Background(), v1)
	wantReason(t, err, reasonV1)

	both := a.validator(t, entraauth.Config{AcceptV1: true})
	id, err := both.Validate(context.Background(), v1)
	if err != nil {
		t.Fatalf("v1 token with AcceptV1: %v", err)
	}
	if id.Version != "1.0" || id.CallerAppID != authAppID || id.PreferredUsername != "user@test.example" {
		t.Errorf("v1 identity = %+v", id)
	}
	mixed := a.token(t, nil, map[string]any{"ver": "1.0"})
	_, err = both.Validate(context.Background(), mixed)
	wantReason(t, err, reasonIssuer)
	if _, err := both.Validate(context.Background(), a.token(t, nil, nil)); err != nil {
		t.Errorf("v2 token with AcceptV1: %v", err)
	}
}

// TestClockSkewConfigured: a skew other than the default moves both bounds.
func TestClockSkewConfigured(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{ClockSkew: time.Minute})
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	tests := []struct {
		claims map[string]any
		reason string
	}{
		{map[string]any{"exp": at(-59 * time.Second)}, ""},
		{map[string]any{"exp": at(-2 * time.Minute)}, reasonExpired},
		{map[string]any{"nbf": at(time.Minute)}, ""},
		{map[string]any{"nbf": at(2 * time.Minute)}, reasonNbf},
	}
	for _, tt := range tests {
		_, err := v.Validate(context.Background(), a.token(t, nil, tt.claims))
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.claims, err)
			}
			continue
		}
		wantReason(t, err, tt.reason)
	}
}

// TestExpiredIsTold: an expired token says so (clients refresh on it);
// other rejections do not.
func TestExpiredIsTold(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	_, err := v.Validate(context.Background(), a.token(t, nil, map[string]any{"exp": testNow.Add(-time.Hour).Unix()}))
	var e *entraauth.Error
	if !errors.As(err, &e) || !e.Expired() {
		t.Errorf("expired token: %v, Expired() false", err)
	}
	_, err = v.Validate(context.Background(), a.token(t, nil, map[string]any{"nbf": testNow.Add(time.Hour).Unix()}))
	if !errors.As(err, &e) || e.Expired() {
		t.Errorf("token not yet valid: %v, Expired() true", err)
	}
}

// TestSignatureChecks: the signature is what the claims rest on.
func TestSignatureChecks(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := a.signWith(t, attacker, map[string]any{"alg": "RS256", "kid": a.kid}, a.claims())
	_, err = v.Validate(context.Background(), forged)
	wantReason(t, err, reasonSignature)

	parts := strings.Split(a.token(t, nil, nil), ".")
	tampered := parts[0] + "." + seg(t, edit(a.claims(), map[string]any{"roles": []string{"Owner"}})) + "." + parts[2]
	_, err = v.Validate(context.Background(), tampered)
	wantReason(t, err, reasonSignature)
}

// TestRejectionReasonReachesTheCaller: the reason is in the challenge
// (RFC 6750 error_description) and the problem body.
func TestRejectionReasonReachesTheCaller(t *testing.T) {
	a := newTestAuthority(t)
	v := a.validator(t, entraauth.Config{})
	rec := httptest.NewRecorder()
	v.Protect(okHandler()).ServeHTTP(rec, bearer(a.token(t, map[string]any{"crit": []string{"exp"}}, nil))())
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), reasonCrit) || !strings.Contains(rec.Body.String(), reasonCrit) {
		t.Errorf("%d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
}
