package appconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/secrets"
)

// Settings [CredentialFromEnv] reads: the apps' conventions for the credential
// that proves their own identity to Entra (handler/downstream takes a
// Credential and reads no environment itself).
const (
	EnvCredential      = "AZURE_API_CREDENTIAL"              // managed-identity | secret | keyvault-secret | certificate | keyvault-certificate
	EnvClientSecret    = "AZURE_API_CLIENT_SECRET"           // for secret
	EnvKeyVaultURL     = "AZURE_KEYVAULT_URL"                // for keyvault-*
	EnvSecretName      = "AZURE_API_CLIENT_SECRET_NAME"      // keyvault-secret; default task-api-client-secret
	EnvCertificateName = "AZURE_API_CLIENT_CERTIFICATE_NAME" // keyvault-certificate; default task-api-client-certificate
	EnvCertificatePath = "AZURE_API_CLIENT_CERTIFICATE_PATH" // certificate: PEM with the certificate and its key
	EnvSecretRefresh   = "AZURE_API_CREDENTIAL_REFRESH"      // keyvault-*: re-read interval, a Go duration; default 5m
	EnvManagedIdentity = "AZURE_CLIENT_ID"                   // user-assigned managed identity (azidentity's convention)
)

// Credential modes.
const (
	ModeManagedIdentity     = "managed-identity"
	ModeSecret              = "secret"
	ModeKeyVaultSecret      = "keyvault-secret"
	ModeCertificate         = "certificate"
	ModeKeyVaultCertificate = "keyvault-certificate"
)

// minRefresh bounds how often a vault is read.
const minRefresh = 10 * time.Second

// EnvOptions are what [CredentialFromEnv] cannot read from the environment.
type EnvOptions struct {
	// Getenv reads settings; nil means os.Getenv. (azidentity's managed
	// identity reads IDENTITY_ENDPOINT and the like from the real environment.)
	Getenv func(string) string
	// Transport for the managed identity and Key Vault; nil means azcore's.
	Transport policy.Transporter
	Logger    *slog.Logger
	Now       func() time.Time
}

// CredentialFromEnv selects the app's credential from AZURE_API_CREDENTIAL,
// or, when that is unset, from which settings are present (a secret, a
// vault, a certificate file, in that order). It returns the credential and
// the mode chosen. The managed identity modes use azidentity's
// ManagedIdentityCredential, AZURE_CLIENT_ID naming a user-assigned one.
func CredentialFromEnv(opts EnvOptions) (downstream.Credential, string, error) {
	get := opts.Getenv
	if get == nil {
		get = os.Getenv
	}
	c := credEnv{opts: opts, env: func(k string) string { return strings.TrimSpace(get(k)) }}
	mode, err := c.mode()
	if err != nil {
		return nil, "", err
	}
	c.chosen = mode
	rotation, err := c.rotation()
	if err != nil {
		return nil, "", err
	}
	env, managedIdentity, vaultSecret := c.env, c.managedIdentity, c.vaultSecret

	switch mode {
	case ModeManagedIdentity:
		mi, err := managedIdentity()
		if err != nil {
			return nil, "", err
		}
		return downstream.FederatedManagedIdentity(mi), mode, nil
	case ModeSecret:
		c, err := downstream.ClientSecret(env(EnvClientSecret))
		if err != nil {
			return nil, "", fmt.Errorf("appconfig: %s=%s needs %s", EnvCredential, mode, EnvClientSecret)
		}
		return c, mode, nil
	case ModeKeyVaultSecret:
		s, err := vaultSecret(EnvSecretName, "task-api-client-secret")
		if err != nil {
			return nil, "", err
		}
		return downstream.RotatingSecret(s, rotation), mode, nil
	case ModeCertificate:
		path := env(EnvCertificatePath)
		if path == "" {
			return nil, "", fmt.Errorf("appconfig: %s=%s needs %s", EnvCredential, mode, EnvCertificatePath)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("appconfig: %s: %w", EnvCertificatePath, err)
		}
		c, err := downstream.CertificateFromPEM(pem)
		return c, mode, err
	case ModeKeyVaultCertificate:
		s, err := vaultSecret(EnvCertificateName, "task-api-client-certificate")
		if err != nil {
			return nil, "", err
		}
		return downstream.RotatingCertificate(s, rotation), mode, nil
	}
	return nil, "", errors.New("appconfig: " + EnvCredential + "=" + mode + " is not one of " +
		strings.Join([]string{ModeManagedIdentity, ModeSecret, ModeKeyVaultSecret, ModeCertificate, ModeKeyVaultCertificate}, ", "))
}

// credEnv reads the credential's settings.
type credEnv struct {
	opts   EnvOptions
	env    func(string) string
	chosen string // the mode chosen, for errors
}

// mode is the credential mode: AZURE_API_CREDENTIAL, else the first of a
// secret, a Key Vault or a certificate path that is set.
func (c credEnv) mode() (string, error) {
	if mode := c.env(EnvCredential); mode != "" {
		return mode, nil
	}
	switch {
	case c.env(EnvClientSecret) != "":
		return ModeSecret, nil
	case c.env(EnvKeyVaultURL) != "":
		return ModeKeyVaultSecret, nil
	case c.env(EnvCertificatePath) != "":
		return ModeCertificate, nil
	}
	return "", fmt.Errorf("appconfig: no credential configured: set %s to %s (recommended in Azure), or set %s, %s or %s", EnvCredential, ModeManagedIdentity, EnvClientSecret, EnvKeyVaultURL, EnvCertificatePath)
}

// rotation is how a secret or certificate from Key Vault is re-read.
func (c credEnv) rotation() (downstream.RotationOptions, error) {
	rotation := downstream.RotationOptions{Logger: c.opts.Logger, Now: c.opts.Now}
	if r := c.env(EnvSecretRefresh); r != "" {
		d, err := time.ParseDuration(r)
		if err != nil || d < minRefresh {
			return rotation, fmt.Errorf("appconfig: %s=%q must be a duration of at least %s", EnvSecretRefresh, r, minRefresh)
		}
		rotation.Refresh = d
	}
	return rotation, nil
}

// managedIdentity is the app's managed identity (user-assigned when
// AZURE_CLIENT_ID names one).
func (c credEnv) managedIdentity() (azcore.TokenCredential, error) {
	o := &azidentity.ManagedIdentityCredentialOptions{}
	if id := c.env(EnvManagedIdentity); id != "" {
		o.ID = azidentity.ClientID(id)
	}
	if c.opts.Transport != nil {
		o.Transport = c.opts.Transport
	}
	return azidentity.NewManagedIdentityCredential(o)
}

// vaultSecret is the Key Vault secret nameVar names (default defaultName),
// read with the managed identity.
func (c credEnv) vaultSecret(nameVar, defaultName string) (secrets.Secret, error) {
	u := c.env(EnvKeyVaultURL)
	if u == "" {
		return secrets.Secret{}, fmt.Errorf("appconfig: %s=%s needs %s", EnvCredential, c.chosen, EnvKeyVaultURL)
	}
	mi, err := c.managedIdentity()
	if err != nil {
		return secrets.Secret{}, err
	}
	v, err := secrets.NewVault(u, mi, secrets.Options{Transport: c.opts.Transport})
	if err != nil {
		return secrets.Secret{}, err
	}
	name := c.env(nameVar)
	if name == "" {
		name = defaultName
	}
	return v.Secret(name), nil
}
