package entra_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestTokenJourney obtains tokens A, B and C of docs/architecture.md with the real MSAL
// clients and checks every claim each hop relies on.
func TestTokenJourney(t *testing.T) {
	srv := start(t)
	ctx := context.Background()

	// Token A: alice → Task API.
	a := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
	ca := claims(t, a.AccessToken)
	wantClaim(t, ca, "aud", entra.TaskAPIClientID)
	wantClaim(t, ca, "iss", srv.Issuer(entra.HomeTenantID))
	wantClaim(t, ca, "ver", "2.0")
	wantClaim(t, ca, "scp", entra.ScopeAccessAsUser)
	wantClaim(t, ca, "roles", entra.RoleAdmin)
	wantClaim(t, ca, "oid", entra.AliceOID)
	wantClaim(t, ca, "tid", entra.HomeTenantID)
	wantClaim(t, ca, "name", "Alice Admin")
	wantClaim(t, ca, "preferred_username", "alice@home.handoff.test")
	wantClaim(t, ca, "azp", entra.DevClientID)
	wantClaim(t, ca, "azpacr", "0")
	wantClaim(t, ca, "idtyp", "user")
	for _, c := range []string{"aio", "rh", "uti", "sub", "iat", "nbf", "exp"} {
		if ca[c] == nil || ca[c] == "" {
			t.Errorf("token A: claim %s missing", c)
		}
	}
	if ca["sub"] == entra.AliceOID {
		t.Error("token A: sub equals oid; Entra's sub is pairwise per app")
	}
	if life := ca["exp"].(float64) - ca["iat"].(float64); life != 3600 {
		t.Errorf("token A lifetime = %vs, want 3600", life)
	}
	if a.IDToken.Oid != entra.AliceOID || a.Account.PreferredUsername != "alice@home.handoff.test" {
		t.Errorf("MSAL account = %+v / id token oid %q", a.Account, a.IDToken.Oid)
	}

	taskAPI := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)

	// Token B: Task API → Notification, On-Behalf-Of alice.
	b, err := taskAPI.AcquireTokenOnBehalfOf(ctx, a.AccessToken, []string{notificationScope})
	if err != nil {
		t.Fatalf("OBO: %v", err)
	}
	cb := claims(t, b.AccessToken)
	wantClaim(t, cb, "aud", entra.NotificationClientID)
	wantClaim(t, cb, "iss", srv.Issuer(entra.HomeTenantID))
	wantClaim(t, cb, "scp", "Notify.Send Notify.Read")
	wantClaim(t, cb, "oid", entra.AliceOID)
	wantClaim(t, cb, "tid", entra.HomeTenantID)
	wantClaim(t, cb, "name", "Alice Admin")
	wantClaim(t, cb, "preferred_username", "alice@home.handoff.test")
	wantClaim(t, cb, "azp", entra.TaskAPIClientID)
	wantClaim(t, cb, "azpacr", "1")
	wantClaim(t, cb, "idtyp", "user")
	wantNoClaim(t, cb, "roles")
	if cb["sub"] == ca["sub"] {
		t.Error("token B has token A's sub; sub is pairwise per resource app")
	}

	// Token C: Task API → Audit, as itself.
	c, err := taskAPI.AcquireTokenByCredential(ctx, []string{auditScope})
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	cc := claims(t, c.AccessToken)
	spOID := srv.Directory().ServicePrincipalObjectID(entra.HomeTenantID, entra.TaskAPIClientID)
	wantClaim(t, cc, "aud", entra.AuditClientID)
	wantClaim(t, cc, "iss", srv.Issuer(entra.HomeTenantID))
	wantClaim(t, cc, "roles", entra.RoleAuditWrite)
	wantClaim(t, cc, "idtyp", "app")
	wantClaim(t, cc, "azp", entra.TaskAPIClientID)
	wantClaim(t, cc, "oid", spOID)
	wantClaim(t, cc, "sub", spOID)
	wantClaim(t, cc, "tid", entra.HomeTenantID)
	wantNoClaim(t, cc, "scp", "name", "preferred_username")

	// All three verify through the emulator's own JWKS, found by discovery.
	keys, err := jwk.Fetch(ctx, srv.BaseURL()+"/common/discovery/v2.0/keys", jwk.WithHTTPClient(srv.HTTPClient()))
	if err != nil {
		t.Fatalf("fetch JWKS: %v", err)
	}
	for name, tok := range map[string]string{"A": a.AccessToken, "B": b.AccessToken, "C": c.AccessToken, "id": a.IDToken.RawToken} {
		if _, err := jwt.Parse([]byte(tok), jwt.WithKeySet(keys, jws.WithInferAlgorithmFromKey(true)), jwt.WithValidate(true)); err != nil {
			t.Errorf("token %s does not verify with the JWKS: %v", name, err)
		}
	}
	for i := 0; i < keys.Len(); i++ {
		k, _ := keys.Key(i)
		if k.Algorithm().String() != "" {
			t.Errorf("JWKS key %s carries alg %q; Entra's keys carry none", k.KeyID(), k.Algorithm())
		}
		if k.X509CertChain() == nil || k.X509CertChain().Len() == 0 || k.X509CertThumbprint() != k.KeyID() {
			t.Errorf("JWKS key %s lacks x5c or x5t = kid", k.KeyID())
		}
	}
}

// TestSecondTenantOBO exchanges erin's token at her own tenant's authority.
func TestSecondTenantOBO(t *testing.T) {
	srv := start(t)
	a := userToken(t, srv, entra.SecondTenantID, "erin@fabrikam.handoff.test", taskAPIScope)
	wantClaim(t, claims(t, a.AccessToken), "tid", entra.SecondTenantID)
	wantClaim(t, claims(t, a.AccessToken), "roles", entra.RoleEditor)

	taskAPI := secretClient(t, srv, entra.SecondTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	b, err := taskAPI.AcquireTokenOnBehalfOf(context.Background(), a.AccessToken, []string{notificationScope})
	if err != nil {
		t.Fatalf("OBO in second tenant: %v", err)
	}
	cb := claims(t, b.AccessToken)
	wantClaim(t, cb, "tid", entra.SecondTenantID)
	wantClaim(t, cb, "iss", srv.Issuer(entra.SecondTenantID))
	wantClaim(t, cb, "oid", entra.ErinOID)
	if got := srv.Stats().GrantsByTenant[entra.GrantOnBehalfOf][entra.SecondTenantID]; got != 1 {
		t.Errorf("OBO requests at the second tenant = %d, want 1", got)
	}
}

// TestRefreshToken: MSAL redeems the refresh token from a sign-in for a
// token to another resource, silently.
func TestRefreshToken(t *testing.T) {
	srv := start(t)
	pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
	ctx := context.Background()
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	first, err := pc.AcquireTokenByUsernamePassword(ctx, []string{taskAPIScope}, "bob@home.handoff.test", entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	readScope := "api://" + entra.NotificationClientID + "/" + entra.ScopeNotifyRead
	res, err := pc.AcquireTokenSilent(ctx, []string{readScope}, publicSilent(first.Account))
	if err != nil {
		t.Fatalf("silent token for another resource: %v", err)
	}
	c := claims(t, res.AccessToken)
	wantClaim(t, c, "aud", entra.NotificationClientID)
	wantClaim(t, c, "scp", entra.ScopeNotifyRead)
	wantClaim(t, c, "oid", entra.BobOID)
	if got := srv.Stats().Grants[entra.GrantRefreshToken]; got != 1 {
		t.Errorf("refresh token requests = %d, want 1", got)
	}
	// The cached token is served from then on.
	if _, err := pc.AcquireTokenSilent(ctx, []string{readScope}, publicSilent(first.Account)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Stats().Grants[entra.GrantRefreshToken]; got != 1 {
		t.Errorf("refresh token requests after a cached call = %d, want 1", got)
	}
}

// TestV1Tokens: a resource that asks for v1 tokens (Key Vault here) gets the
// v1 claim set and the v1 issuer.
func TestV1Tokens(t *testing.T) {
	srv := start(t)
	taskAPI := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	res, err := taskAPI.AcquireTokenByCredential(context.Background(), []string{entra.KeyVaultResource + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	c := claims(t, res.AccessToken)
	wantClaim(t, c, "ver", "1.0")
	wantClaim(t, c, "iss", srv.IssuerV1(entra.HomeTenantID))
	wantClaim(t, c, "aud", entra.KeyVaultResource)
	wantClaim(t, c, "appid", entra.TaskAPIClientID)
	wantClaim(t, c, "appidacr", "1")
	wantNoClaim(t, c, "azp", "scp")

	u := userToken(t, srv, entra.HomeTenantID, "carol@home.handoff.test", "https://graph.microsoft.com/User.Read")
	cu := claims(t, u.AccessToken)
	wantClaim(t, cu, "ver", "1.0")
	wantClaim(t, cu, "upn", "carol@home.handoff.test")
	wantClaim(t, cu, "unique_name", "carol@home.handoff.test")
	wantClaim(t, cu, "appid", entra.DevClientID)
	wantClaim(t, cu, "scp", "User.Read")
}

// TestClientCredentialsCache: the emulator's answer lets MSAL cache app tokens.
func TestClientCredentialsCache(t *testing.T) {
	srv := start(t)
	taskAPI := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	for range 20 {
		if _, err := taskAPI.AcquireTokenByCredential(context.Background(), []string{auditScope}); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Stats().Grants[entra.GrantClientCredentials]; got != 1 {
		t.Errorf("20 acquisitions made %d token requests; the emulator's response must let MSAL cache (no client_info on app tokens)", got)
	}
}

func TestDiscoveryDerivesFromBaseURL(t *testing.T) {
	srv := start(t)
	hc := srv.HTTPClient()
	for _, tc := range []struct{ tenant, issuer string }{
		{entra.HomeTenantID, srv.Issuer(entra.HomeTenantID)},
		{"home.handoff.test", srv.Issuer(entra.HomeTenantID)},
		{"organizations", srv.BaseURL() + "/{tenantid}/v2.0"},
		{"common", srv.BaseURL() + "/{tenantid}/v2.0"},
	} {
		// Whatever Host the request names (localhost here), the issuer is the canonical one.
		u := strings.Replace(srv.BaseURL(), "127.0.0.1", "localhost", 1) + "/" + tc.tenant + "/v2.0/.well-known/openid-configuration"
		var doc map[string]any
		getJSON(t, hc, u, &doc)
		if doc["issuer"] != tc.issuer {
			t.Errorf("%s: issuer = %v, want %s", tc.tenant, doc["issuer"], tc.issuer)
		}
		if !strings.HasPrefix(doc["token_endpoint"].(string), srv.BaseURL()+"/") {
			t.Errorf("%s: token_endpoint %v does not derive from the base URL", tc.tenant, doc["token_endpoint"])
		}
	}
	var v1 map[string]any
	getJSON(t, hc, srv.BaseURL()+"/"+entra.HomeTenantID+"/.well-known/openid-configuration", &v1)
	if v1["issuer"] != srv.IssuerV1(entra.HomeTenantID) {
		t.Errorf("v1 issuer = %v", v1["issuer"])
	}
}
