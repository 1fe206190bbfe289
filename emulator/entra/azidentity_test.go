package entra_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

// These tests run the real azidentity credentials, and MSAL Go where
// azidentity wraps it, against the emulator: every way the Task API may
// authenticate itself (secret, certificate, managed identity, and the
// secretless federated credential) and the errors azidentity surfaces.

// azClientOptions points an azidentity credential at the emulator: its base
// URL as the authority host and a transport that trusts its CA. Credentials
// that talk to the token endpoint also need DisableInstanceDiscovery.
func azClientOptions(srv *entra.Server) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.BaseURL() + "/"},
		Transport: srv.HTTPClient(),
	}
}

// appTokenSource is one client library's way of getting app-only tokens for
// the Task API with a given credential.
type appTokenSource struct {
	name string
	get  func(ctx context.Context, scope string) (string, error)
}

func viaAzidentity(cred azcore.TokenCredential) appTokenSource {
	return appTokenSource{"azidentity", func(ctx context.Context, scope string) (string, error) {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		return tok.Token, err
	}}
}

func viaMSAL(c confidential.Client) appTokenSource {
	return appTokenSource{"msal", func(ctx context.Context, scope string) (string, error) {
		res, err := c.AcquireTokenByCredential(ctx, []string{scope})
		return res.AccessToken, err
	}}
}

// certificateSources authenticate the Task API with cert and key, through
// azidentity's ClientCertificateCredential and through MSAL directly.
func certificateSources(t *testing.T, srv *entra.Server, cert *x509.Certificate, key *rsa.PrivateKey) []appTokenSource {
	t.Helper()
	az, err := azidentity.NewClientCertificateCredential(entra.HomeTenantID, entra.TaskAPIClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: azClientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatalf("NewClientCertificateCredential: %v", err)
	}
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{cert}, key)
	if err != nil {
		t.Fatalf("NewCredFromCert: %v", err)
	}
	return []appTokenSource{viaAzidentity(az), viaMSAL(confidentialClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, cred))}
}

// assertionSources authenticate the Task API with the assertions
// getAssertion returns, through azidentity's ClientAssertionCredential and
// through MSAL directly.
func assertionSources(t *testing.T, srv *entra.Server, getAssertion func(context.Context) (string, error)) []appTokenSource {
	t.Helper()
	az, err := azidentity.NewClientAssertionCredential(entra.HomeTenantID, entra.TaskAPIClientID, getAssertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: azClientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatalf("NewClientAssertionCredential: %v", err)
	}
	cred := confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
		return getAssertion(ctx)
	})
	return []appTokenSource{viaAzidentity(az), viaMSAL(confidentialClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, cred))}
}

// wantTokenC checks token C (Task API → Audit Service, as itself) and the
// client authentication it records: "1" secret, "2" certificate or
// federated assertion.
func wantTokenC(t *testing.T, srv *entra.Server, tok, azpacr string) {
	t.Helper()
	c := claims(t, tok)
	spOID := srv.Directory().ServicePrincipalObjectID(entra.HomeTenantID, entra.TaskAPIClientID)
	wantClaim(t, c, "aud", entra.AuditClientID)
	wantClaim(t, c, "iss", srv.Issuer(entra.HomeTenantID))
	wantClaim(t, c, "tid", entra.HomeTenantID)
	wantClaim(t, c, "roles", entra.RoleAuditWrite)
	wantClaim(t, c, "idtyp", "app")
	wantClaim(t, c, "azp", entra.TaskAPIClientID)
	wantClaim(t, c, "azpacr", azpacr)
	wantClaim(t, c, "oid", spOID)
	wantClaim(t, c, "sub", spOID)
	wantNoClaim(t, c, "scp", "name", "preferred_username")
}

// responseStatus is the HTTP status of the response behind an azidentity or
// MSAL error, or 0 when there is none.
func responseStatus(err error) int {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) && af.RawResponse != nil {
		return af.RawResponse.StatusCode
	}
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		return ce.Resp.StatusCode
	}
	return 0
}

// selfSignedCert makes an RSA-2048 self-signed certificate, as
// `az ad app credential reset --create-cert` does.
func selfSignedCert(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// appServiceIdentity makes a ManagedIdentityCredential that finds the
// emulator as App Service's managed identity endpoint. MSAL reads
// IDENTITY_ENDPOINT and IDENTITY_HEADER when the credential is created and
// again on every request, so they stay set for the test; tests that call
// this cannot run in parallel.
func appServiceIdentity(t *testing.T, srv *entra.Server, header string, id azidentity.ManagedIDKind) *azidentity.ManagedIdentityCredential {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", srv.BaseURL()+entra.IdentityEndpointPath)
	t.Setenv("IDENTITY_HEADER", header)
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "") // set, it would mean Service Fabric
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            id,
		ClientOptions: azcore.ClientOptions{Transport: srv.HTTPClient()},
	})
	if err != nil {
		t.Fatalf("NewManagedIdentityCredential: %v", err)
	}
	return cred
}

// uncachedMI is a claims challenge sent with every managed identity token
// request of these tests. MSAL Go keeps managed identity tokens in one
// process-wide cache, keyed by identity and resource but not by endpoint, so
// a token another test got from another emulator (other keys, other port)
// would otherwise be served, and a request meant to fail would not be made.
// MSAL skips its cache for a request with claims; the App Service protocol
// does not carry them.
const uncachedMI = `{"access_token":{"nbf":{"essential":true,"value":"0"}}}`

// managedIdentityToken asks the emulator's managed identity endpoint for a
// token for scope, bypassing MSAL's process-wide cache.
func managedIdentityToken(ctx context.Context, cred *azidentity.ManagedIdentityCredential, scope string) (azcore.AccessToken, error) {
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, Claims: uncachedMI})
}

// TestAzidentityClientSecret gets token C with azidentity's
// ClientSecretCredential, and a second time from its cache.
func TestAzidentityClientSecret(t *testing.T) {
	srv := start(t)
	ctx := context.Background()
	cred, err := azidentity.NewClientSecretCredential(entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: azClientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{auditScope}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	wantTokenC(t, srv, tok.Token, "1")

	again, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{auditScope}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Token != tok.Token {
		t.Error("second GetToken returned a new token; azidentity should have served it from its cache")
	}
	if got := srv.Stats().Grants[entra.GrantClientCredentials]; got != 1 {
		t.Errorf("client credentials requests = %d, want 1", got)
	}
}

// TestAzidentityErrors: azidentity surfaces the emulator's AADSTS errors
// (code and HTTP status), and retries none of them.
func TestAzidentityErrors(t *testing.T) {
	srv := start(t)
	const unknownApp = "a0000000-0000-4000-8000-0000000000ff"
	for _, tc := range []struct {
		name             string
		clientID, secret string
		scope            string
		wantCode         int
		wantStatus       int
	}{
		{"wrong secret", entra.TaskAPIClientID, "not-the-secret", auditScope, 7000215, 401},
		{"another app's secret", entra.TaskAPIClientID, entra.OperatorSecret, auditScope, 7000215, 401},
		{"unknown app", unknownApp, entra.TaskAPISecret, auditScope, 700016, 400},
		{"app role as scope", entra.TaskAPIClientID, entra.TaskAPISecret, "api://" + entra.AuditClientID + "/" + entra.RoleAuditWrite, 1002012, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := azidentity.NewClientSecretCredential(entra.HomeTenantID, tc.clientID, tc.secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: azClientOptions(srv), DisableInstanceDiscovery: true})
			if err != nil {
				t.Fatal(err)
			}
			before := srv.Stats().Requests[entra.EndpointToken]
			_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{tc.scope}})
			if err == nil {
				t.Fatal("GetToken succeeded")
			}
			var af *azidentity.AuthenticationFailedError
			if !errors.As(err, &af) {
				t.Errorf("error is %T, want *azidentity.AuthenticationFailedError: %v", err, err)
			}
			if got := aadsts(err); got != tc.wantCode {
				t.Errorf("error names AADSTS%d, want AADSTS%d: %v", got, tc.wantCode, err)
			}
			if got := responseStatus(err); got != tc.wantStatus {
				t.Errorf("response status = %d, want %d", got, tc.wantStatus)
			}
			if got := srv.Stats().Requests[entra.EndpointToken] - before; got != 1 {
				t.Errorf("token requests = %d, want 1: an authentication error must not be retried", got)
			}
		})
	}
}

// TestClientCertificate: the Task API authenticates with a certificate
// registered on its app, through azidentity and MSAL; a certificate it does
// not have is refused with AADSTS700027.
func TestClientCertificate(t *testing.T) {
	registered, registeredKey := selfSignedCert(t, "task-api")
	stranger, strangerKey := selfSignedCert(t, "task-api")
	dir := entra.DefaultDirectory()
	taskAPI := dir.Application(entra.TaskAPIClientID)
	taskAPI.Certificates = append(taskAPI.Certificates, entra.Certificate{
		ID:  "task-api-cert",
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: registered.Raw})),
	})
	srv := entratest.Start(t, entra.Config{Directory: dir})
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		cert     *x509.Certificate
		key      *rsa.PrivateKey
		wantCode int // 0: token C
	}{
		{"registered certificate", registered, registeredKey, 0},
		{"unregistered certificate", stranger, strangerKey, 700027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range certificateSources(t, srv, tc.cert, tc.key) {
				t.Run(src.name, func(t *testing.T) {
					tok, err := src.get(ctx, auditScope)
					if tc.wantCode == 0 {
						if err != nil {
							t.Fatalf("token C with a certificate: %v", err)
						}
						wantTokenC(t, srv, tok, "2")
						return
					}
					if got := aadsts(err); got != tc.wantCode {
						t.Errorf("error names AADSTS%d, want AADSTS%d: %v", got, tc.wantCode, err)
					}
					if got := responseStatus(err); got != 401 {
						t.Errorf("response status = %d, want 401", got)
					}
				})
			}
		})
	}
}

// TestManagedIdentityCredential gets Key Vault tokens for the Task API's
// managed identity from the emulator's App Service style endpoint, naming
// the identity every way azidentity can; a wrong IDENTITY_HEADER or an
// unknown identity is refused.
func TestManagedIdentityCredential(t *testing.T) {
	srv := start(t)
	const resourceID = "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/handoff/providers/Microsoft.ManagedIdentity/userAssignedIdentities/task-api-identity"
	for _, tc := range []struct {
		name       string
		header     string
		id         azidentity.ManagedIDKind
		wantStatus int // 0: a token
	}{
		{"client id", entra.DevIdentityHeader, azidentity.ClientID(entra.TaskAPIIdentityClientID), 0},
		{"object id", entra.DevIdentityHeader, azidentity.ObjectID(entra.TaskAPIIdentityObjectID), 0},
		{"resource id", entra.DevIdentityHeader, azidentity.ResourceID(resourceID), 0},
		{"system assigned", entra.DevIdentityHeader, nil, 0},
		{"wrong identity header", "not-the-identity-header", azidentity.ClientID(entra.TaskAPIIdentityClientID), 401},
		{"unknown identity", entra.DevIdentityHeader, azidentity.ClientID("e0000000-0000-4000-8000-0000000000ff"), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred := appServiceIdentity(t, srv, tc.header, tc.id)
			before := srv.Stats().Requests[entra.EndpointManagedIdentity]
			tok, err := managedIdentityToken(context.Background(), cred, entra.KeyVaultResource+"/.default")
			if got := srv.Stats().Requests[entra.EndpointManagedIdentity] - before; got != 1 {
				t.Errorf("managed identity requests = %d, want 1", got)
			}
			if tc.wantStatus != 0 {
				if err == nil {
					t.Fatal("GetToken succeeded")
				}
				var af *azidentity.AuthenticationFailedError
				if !errors.As(err, &af) {
					t.Errorf("error is %T, want *azidentity.AuthenticationFailedError: %v", err, err)
				}
				if got := responseStatus(err); got != tc.wantStatus {
					t.Errorf("response status = %d, want %d: %v", got, tc.wantStatus, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			c := claims(t, tok.Token)
			// Key Vault takes v1 tokens: aud is the resource as requested.
			wantClaim(t, c, "ver", "1.0")
			wantClaim(t, c, "aud", entra.KeyVaultResource)
			wantClaim(t, c, "iss", srv.IssuerV1(entra.HomeTenantID))
			wantClaim(t, c, "tid", entra.HomeTenantID)
			wantClaim(t, c, "oid", entra.TaskAPIIdentityObjectID)
			wantClaim(t, c, "sub", entra.TaskAPIIdentityObjectID)
			wantClaim(t, c, "appid", entra.TaskAPIIdentityClientID)
			wantClaim(t, c, "appidacr", "2")
			wantNoClaim(t, c, "scp", "azp", "upn")
			if exp := c["exp"].(float64); tok.ExpiresOn.Unix() != int64(exp) {
				t.Errorf("ExpiresOn = %v, want the token's exp %v", tok.ExpiresOn.Unix(), int64(exp))
			}
		})
	}
}

// TestFederatedCredential is the secretless path: the Task API presents its
// managed identity's api://AzureADTokenExchange token, which its federated
// identity credential trusts, as its client assertion for token C.
func TestFederatedCredential(t *testing.T) {
	srv := start(t)
	ctx := context.Background()
	mi := appServiceIdentity(t, srv, entra.DevIdentityHeader, azidentity.ClientID(entra.TaskAPIIdentityClientID))
	exchangeToken := func(ctx context.Context) (string, error) {
		tok, err := managedIdentityToken(ctx, mi, entra.TokenExchangeURI+"/.default")
		return tok.Token, err
	}

	// The assertion is what the federated credential matches: the emulator's
	// v2 issuer for the home tenant, the identity's object id as subject, and
	// the token exchange app as audience.
	a, err := exchangeToken(ctx)
	if err != nil {
		t.Fatalf("managed identity token for %s: %v", entra.TokenExchangeURI, err)
	}
	ca := claims(t, a)
	wantClaim(t, ca, "iss", srv.Issuer(entra.HomeTenantID))
	wantClaim(t, ca, "sub", entra.TaskAPIIdentityObjectID)
	wantClaim(t, ca, "aud", entra.TokenExchangeAppID)
	wantClaim(t, ca, "azp", entra.TaskAPIIdentityClientID)

	for _, src := range assertionSources(t, srv, exchangeToken) {
		t.Run(src.name, func(t *testing.T) {
			before := srv.Stats().Requests[entra.EndpointManagedIdentity]
			tok, err := src.get(ctx, auditScope)
			if err != nil {
				t.Fatalf("token C with a federated credential: %v", err)
			}
			wantTokenC(t, srv, tok, "2")
			if got := srv.Stats().Requests[entra.EndpointManagedIdentity] - before; got != 1 {
				t.Errorf("managed identity requests = %d, want 1 (the assertion callback's)", got)
			}
		})
	}
}

// TestFederatedCredentialUntrusted: an assertion that no federated identity
// credential of the Task API matches is refused with the code that names
// what differs, as Entra does: the issuer (AADSTS700211), the subject
// (AADSTS700213) or the audience (AADSTS700212).
func TestFederatedCredentialUntrusted(t *testing.T) {
	const strangerClientID, strangerObjectID = "e0000000-0000-4000-8000-0000000000aa", "e1000000-0000-4000-8000-0000000000aa"
	dir := entra.DefaultDirectory()
	dir.ManagedIdentities = append(dir.ManagedIdentities, &entra.ManagedIdentity{
		Name: "stranger-identity", ClientID: strangerClientID, ObjectID: strangerObjectID, Tenant: entra.HomeTenantID,
	})
	srv := entratest.Start(t, entra.Config{Directory: dir})
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		identity string // managed identity client id
		resource string // of the assertion
		wantCode int
		wantText string // the mismatching value, as the error names it
	}{
		{"identity the app does not trust", strangerClientID, entra.TokenExchangeURI, 700213, "subject '" + strangerObjectID + "'"},
		// A v1 token (Key Vault's) carries the v1 issuer, which the
		// credential, written for the v2 issuer, does not name.
		{"trusted identity, v1 issuer", entra.TaskAPIIdentityClientID, entra.KeyVaultResource, 700211, "issuer '" + srv.IssuerV1(entra.HomeTenantID) + "'"},
		{"trusted identity, wrong audience", entra.TaskAPIIdentityClientID, "api://" + entra.TaskAPIClientID, 700212, "audience '" + entra.TaskAPIClientID + "'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi := appServiceIdentity(t, srv, entra.DevIdentityHeader, azidentity.ClientID(tc.identity))
			assertion := func(ctx context.Context) (string, error) {
				tok, err := managedIdentityToken(ctx, mi, tc.resource+"/.default")
				return tok.Token, err
			}
			for _, src := range assertionSources(t, srv, assertion) {
				t.Run(src.name, func(t *testing.T) {
					before := srv.Stats().Requests[entra.EndpointToken]
					_, err := src.get(ctx, auditScope)
					if err == nil {
						t.Fatal("token C with an untrusted assertion")
					}
					if got := aadsts(err); got != tc.wantCode {
						t.Errorf("error names AADSTS%d, want AADSTS%d: %v", got, tc.wantCode, err)
					}
					if !strings.Contains(err.Error(), tc.wantText) {
						t.Errorf("error does not name %q: %v", tc.wantText, err)
					}
					if got := responseStatus(err); got < 400 || got >= 500 {
						t.Errorf("response status = %d, want a 4xx", got)
					}
					if got := srv.Stats().Requests[entra.EndpointToken] - before; got != 1 {
						t.Errorf("token requests = %d, want 1: an authentication error must not be retried", got)
					}
				})
			}
		})
	}
}
