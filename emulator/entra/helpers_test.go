package entra_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

// Scopes as the services request them.
var (
	taskAPIScope      = "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	notificationScope = entra.NotificationClientID + "/.default"
	auditScope        = entra.AuditClientID + "/.default"
)

// clock is an adjustable clock for the emulator (entratest.Clock).
type clock = entratest.Clock

func start(t *testing.T) *entra.Server {
	t.Helper()
	return entratest.Start(t, entra.Config{})
}

func confidentialClient(t *testing.T, srv *entra.Server, tenant, clientID string, cred confidential.Credential) confidential.Client {
	t.Helper()
	c, err := confidential.New(srv.Authority(tenant), clientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatalf("confidential.New: %v", err)
	}
	return c
}

func secretClient(t *testing.T, srv *entra.Server, tenant, clientID, secret string) confidential.Client {
	t.Helper()
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return confidentialClient(t, srv, tenant, clientID, cred)
}

func publicClient(t *testing.T, srv *entra.Server, tenant, clientID string) public.Client {
	t.Helper()
	c, err := public.New(clientID, public.WithAuthority(srv.Authority(tenant)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatalf("public.New: %v", err)
	}
	return c
}

// userToken signs a user in with the password grant through the dev client.
// The grant is deprecated in MSAL; scripts and tests are its one honest use.
func userToken(t *testing.T, srv *entra.Server, tenant, username string, scopes ...string) public.AuthResult {
	t.Helper()
	pc := publicClient(t, srv, tenant, entra.DevClientID)
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), scopes, username, entra.DefaultUserPassword)
	if err != nil {
		t.Fatalf("password grant for %s: %v", username, err)
	}
	return res
}

// claims decodes a JWT's payload without verifying it (verification is
// tested separately through the JWKS).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// aadsts is the first AADSTS code an error names, or 0.
func aadsts(err error) int {
	if err == nil {
		return 0
	}
	m := aadstsRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// noRedirects is a client that trusts the emulator and stops at redirects,
// as a test playing the browser needs.
func noRedirects(srv *entra.Server) *http.Client {
	c := srv.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func wantClaim(t *testing.T, c map[string]any, name string, want any) {
	t.Helper()
	got, ok := c[name]
	if !ok {
		t.Errorf("claim %s missing, want %v", name, want)
		return
	}
	if gs, ok := got.([]any); ok {
		var parts []string
		for _, g := range gs {
			parts = append(parts, g.(string))
		}
		got = strings.Join(parts, " ")
	}
	if got != want {
		t.Errorf("claim %s = %v, want %v", name, got, want)
	}
}

func wantNoClaim(t *testing.T, c map[string]any, names ...string) {
	t.Helper()
	for _, n := range names {
		if v, ok := c[n]; ok {
			t.Errorf("claim %s = %v, want absent", n, v)
		}
	}
}

func publicSilent(acct public.Account) public.AcquireSilentOption {
	return public.WithSilentAccount(acct)
}

func getJSON(t *testing.T, hc *http.Client, url string, v any) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func decodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
