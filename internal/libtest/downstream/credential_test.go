package downstream_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/keyvault"
	"github.com/handoff-dev/handoff/emulator/keyvault/keyvaulttest"
	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
	"github.com/handoff-dev/handoff/handler/secrets"
	"github.com/handoff-dev/handoff/internal/appconfig"
)

// MSAL Go caches managed identity tokens for the whole process, whatever
// endpoint issued them, so every test that uses the managed identity shares
// this one emulator. Its directory adds a second Task API secret (to rotate
// to) and a certificate.
var (
	shared        *entra.Server
	certPEM       []byte // the Task API's certificate and key
	rotatedSecret = "dev-task-api-secret-rotated"
)

func TestMain(m *testing.M) {
	os.Exit(runWithSharedEmulator(m))
}

func runWithSharedEmulator(m *testing.M) int {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "task-api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM = append(cert, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)

	dir := entra.DefaultDirectory()
	task := dir.Application(entra.TaskAPIClientID)
	task.Secrets = append(task.Secrets, entra.Secret{ID: "rotated", Value: rotatedSecret})
	task.Certificates = append(task.Certificates, entra.Certificate{ID: "test-cert", PEM: string(cert)})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err = entra.New(entra.Config{BaseURL: "https://" + l.Addr().String(), Directory: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- shared.ServeTLS(ctx, l) }()
	code := m.Run()
	cancel()
	<-done
	return code
}

func sharedEnv(t *testing.T) *env {
	t.Helper()
	v, err := entraauth.New(context.Background(), shared.BaseURL(), entraauth.Config{
		ClientID: entra.TaskAPIClientID, AllowAnyTenant: true, HTTPClient: shared.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	shared.ResetStats()
	return &env{srv: shared, v: v}
}

// useManagedIdentity points azidentity's ManagedIdentityCredential at the
// emulator (App Service style); azidentity reads these from the process.
func useManagedIdentity(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", shared.BaseURL()+entra.IdentityEndpointPath)
	t.Setenv("IDENTITY_HEADER", entra.DevIdentityHeader)
}

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func fromEnv(t *testing.T, settings map[string]string, now func() time.Time) (downstream.Credential, string) {
	t.Helper()
	cred, mode, err := appconfig.CredentialFromEnv(appconfig.EnvOptions{Getenv: envMap(settings), Transport: shared.HTTPClient(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return cred, mode
}

func credentialUses(name string) int64 {
	return shared.Stats().Credentials[entra.TaskAPIClientID+"/"+name]
}

func TestCredentialSecret(t *testing.T) {
	e := sharedEnv(t)
	cred, mode := fromEnv(t, map[string]string{appconfig.EnvClientSecret: entra.TaskAPISecret}, nil)
	if mode != appconfig.ModeSecret {
		t.Errorf("inferred mode %q", mode)
	}
	tok, err := e.client(t, cred, nil).AppToken(context.Background(), auditScope)
	if err != nil {
		t.Fatal(err)
	}
	if claimsOf(t, tok.AccessToken)["azpacr"] != "1" || credentialUses("secret/dev") != 1 {
		t.Errorf("azpacr %v, uses %v", claimsOf(t, tok.AccessToken)["azpacr"], shared.Stats().Credentials)
	}
}

// TestCredentialManagedIdentity: the secretless path end to end: the managed
// identity's token for api://AzureADTokenExchange is the client assertion.
func TestCredentialManagedIdentity(t *testing.T) {
	useManagedIdentity(t)
	e := sharedEnv(t)
	cred, _ := fromEnv(t, map[string]string{appconfig.EnvCredential: appconfig.ModeManagedIdentity,
		appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID}, nil)
	c := e.client(t, cred, nil)
	tok, err := c.AppToken(context.Background(), auditScope)
	if err != nil {
		t.Fatal(err)
	}
	cl := claimsOf(t, tok.AccessToken)
	if cl["azp"] != entra.TaskAPIClientID || cl["azpacr"] != "2" || credentialUses("federated/task-api-managed-identity") != 1 {
		t.Errorf("claims %v, uses %v", cl, shared.Stats().Credentials)
	}
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	if _, err := c.OnBehalfOfUser(context.Background(), alice, notificationScope); err != nil {
		t.Fatalf("OBO with the federated credential: %v", err)
	}
}

func TestCredentialCertificateFile(t *testing.T) {
	e := sharedEnv(t)
	path := filepath.Join(t.TempDir(), "task-api.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cred, mode := fromEnv(t, map[string]string{appconfig.EnvCertificatePath: path}, nil)
	if mode != appconfig.ModeCertificate {
		t.Errorf("inferred mode %q", mode)
	}
	if _, err := e.client(t, cred, nil).AppToken(context.Background(), auditScope); err != nil {
		t.Fatal(err)
	}
	if credentialUses("certificate/test-cert") != 1 {
		t.Errorf("uses %v", shared.Stats().Credentials)
	}
}

func startVault(t *testing.T, secretsByName map[string]string, readers ...string) *keyvault.Server {
	t.Helper()
	return keyvaulttest.Start(t, shared, keyvault.Config{Secrets: secretsByName, Readers: readers})
}

func TestCredentialKeyVaultCertificate(t *testing.T) {
	useManagedIdentity(t)
	e := sharedEnv(t)
	vault := startVault(t, map[string]string{"task-api-client-certificate": string(certPEM)}, entra.TaskAPIIdentityObjectID)
	cred, _ := fromEnv(t, map[string]string{appconfig.EnvCredential: appconfig.ModeKeyVaultCertificate,
		appconfig.EnvKeyVaultURL: vault.BaseURL(), appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID}, nil)
	if _, err := e.client(t, cred, nil).AppToken(context.Background(), auditScope); err != nil {
		t.Fatal(err)
	}
	if credentialUses("certificate/test-cert") != 1 {
		t.Errorf("uses %v", shared.Stats().Credentials)
	}
}

// TestKeyVaultSecretRotation: a secret rotated in Key Vault is used after the
// refresh interval, without a restart.
func TestKeyVaultSecretRotation(t *testing.T) {
	useManagedIdentity(t)
	e := sharedEnv(t)
	clk := &clock{}
	vault := startVault(t, map[string]string{"task-api-client-secret": entra.TaskAPISecret}, entra.TaskAPIIdentityObjectID)
	cred, mode := fromEnv(t, map[string]string{appconfig.EnvKeyVaultURL: vault.BaseURL(),
		appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID, appconfig.EnvSecretRefresh: "1m"}, clk.Now)
	if mode != appconfig.ModeKeyVaultSecret {
		t.Errorf("inferred mode %q", mode)
	}
	c := e.client(t, cred, nil)
	ctx := context.Background()
	// Each call asks for another resource, so MSAL's cache does not hide the request.
	if _, err := c.AppToken(ctx, auditScope); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.SetSecret("task-api-client-secret", rotatedSecret); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if _, err := c.AppToken(ctx, notificationScope); err != nil {
		t.Fatal(err)
	}
	if credentialUses("secret/dev") != 2 || credentialUses("secret/rotated") != 0 {
		t.Fatalf("within the refresh interval: uses %v, want the old secret twice", shared.Stats().Credentials)
	}
	clk.Advance(time.Minute)
	if _, err := c.AppToken(ctx, entra.KeyVaultResource+"/.default"); err != nil {
		t.Fatal(err)
	}
	if credentialUses("secret/rotated") != 1 {
		t.Fatalf("after the refresh interval: uses %v, want the rotated secret", shared.Stats().Credentials)
	}
	if s := c.Stats(); s.Rebuilds != 1 {
		t.Errorf("rebuilds = %d, want 1", s.Rebuilds)
	}
}

// TestKeyVaultSecretRefused: an AADSTS7000215 makes the credential read the
// vault again at once and rebuild the clients.
func TestKeyVaultSecretRefused(t *testing.T) {
	useManagedIdentity(t)
	e := sharedEnv(t)
	vault := startVault(t, map[string]string{"task-api-client-secret": "the-secret-id-not-its-value"}, entra.TaskAPIIdentityObjectID)
	clk := &clock{}
	cred, _ := fromEnv(t, map[string]string{appconfig.EnvKeyVaultURL: vault.BaseURL(),
		appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID}, clk.Now)
	c := e.client(t, cred, nil)
	_, err := c.AppToken(context.Background(), auditScope)
	var ce *downstream.CredentialError
	if !errors.As(err, &ce) || ce.Code != 7000215 {
		t.Fatalf("wrong secret in the vault: %v", err)
	}
	if _, err := vault.SetSecret("task-api-client-secret", rotatedSecret); err != nil {
		t.Fatal(err)
	}
	// A refusal right after a forced re-read does not read the vault again
	// (at most one forced re-read per 10 s)...
	reads := vault.Stats().Reads
	if _, err := c.AppToken(context.Background(), auditScope); err == nil || vault.Stats().Reads != reads {
		t.Fatalf("second refusal within 10 s: err %v, vault reads %d → %d", err, reads, vault.Stats().Reads)
	}
	// ...but well within the 5-minute refresh interval, the next refusal does.
	clk.Advance(11 * time.Second)
	if _, err := c.AppToken(context.Background(), auditScope); err != nil {
		t.Fatalf("after fixing the vault: %v", err)
	}
	if credentialUses("secret/rotated") != 1 {
		t.Errorf("uses %v", shared.Stats().Credentials)
	}
}

func TestKeyVaultAccessDenied(t *testing.T) {
	useManagedIdentity(t)
	e := sharedEnv(t)
	vault := startVault(t, map[string]string{"task-api-client-secret": entra.TaskAPISecret}) // no readers
	cred, _ := fromEnv(t, map[string]string{appconfig.EnvKeyVaultURL: vault.BaseURL(),
		appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID}, nil)
	_, err := e.client(t, cred, nil).AppToken(context.Background(), auditScope)
	if !errors.Is(err, secrets.ErrAccessDenied) || !strings.Contains(err.Error(), "Key Vault Secrets User") {
		t.Fatalf("got %v", err)
	}
}

func TestCredentialFromEnvRefusals(t *testing.T) {
	for name, settings := range map[string]map[string]string{
		"nothing configured":       {},
		"unknown mode":             {appconfig.EnvCredential: "password"},
		"secret mode, no secret":   {appconfig.EnvCredential: appconfig.ModeSecret},
		"vault mode, no vault URL": {appconfig.EnvCredential: appconfig.ModeKeyVaultSecret},
		"http vault":               {appconfig.EnvKeyVaultURL: "http://127.0.0.1:7074"},
		"refresh too short":        {appconfig.EnvKeyVaultURL: "https://127.0.0.1:7074", appconfig.EnvSecretRefresh: "1s"},
		"certificate file missing": {appconfig.EnvCertificatePath: "/nonexistent/task-api.pem"},
	} {
		if _, _, err := appconfig.CredentialFromEnv(appconfig.EnvOptions{Getenv: envMap(settings)}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
