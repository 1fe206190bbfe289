// Package secrets reads secrets from Azure Key Vault with an azidentity
// credential (the app's managed identity in Azure), and explains the
// failures a deployment meets: access denied, secret missing.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Vault reads one Key Vault's secrets. It is safe for concurrent use.
type Vault struct {
	url    string
	client *azsecrets.Client
}

// Options configures a [Vault].
type Options struct {
	// Transport for Key Vault requests; nil means azcore's default.
	Transport policy.Transporter
}

// NewVault returns a reader of the vault at vaultURL (https), authenticated
// by cred. A vault on a loopback address is the local emulator: only then
// is the check that the vault's host belongs to the challenge's resource
// (*.vault.azure.net) turned off.
func NewVault(vaultURL string, cred azcore.TokenCredential, opts Options) (*Vault, error) {
	u, err := url.Parse(vaultURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("secrets: vault URL %q must be https://<name>.vault.azure.net", vaultURL)
	}
	copts := &azsecrets.ClientOptions{DisableChallengeResourceVerification: isLoopback(u.Hostname())}
	if opts.Transport != nil {
		copts.Transport = opts.Transport
	}
	c, err := azsecrets.NewClient(vaultURL, cred, copts)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return &Vault{url: vaultURL, client: c}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNotFound: the vault has no such secret.
var ErrNotFound = errors.New("secrets: secret not found")

// ErrAccessDenied: the identity may not read the vault's secrets.
var ErrAccessDenied = errors.New("secrets: access to the vault denied")

// Get returns the current value and version of the named secret.
func (v *Vault) Get(ctx context.Context, name string) (value, version string, err error) {
	resp, err := v.client.GetSecret(ctx, name, "", nil)
	if err != nil {
		return "", "", v.explain(name, err)
	}
	if resp.Value == nil {
		return "", "", fmt.Errorf("secrets: secret %q has no value", name)
	}
	if resp.ID != nil {
		version = resp.ID.Version()
	}
	return *resp.Value, version, nil
}

func (v *Vault) explain(name string, err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusForbidden:
			return fmt.Errorf("%w: the app's identity may not read secret %q in %s: grant it the Key Vault Secrets User role on the vault (and check AZURE_CLIENT_ID names the right managed identity) (%s)",
				ErrAccessDenied, name, v.url, re.ErrorCode)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %q in %s: create it, or fix the secret name setting", ErrNotFound, name, v.url)
		case http.StatusUnauthorized:
			return fmt.Errorf("secrets: %s refused the app's token for secret %q: check the vault is in the app's tenant (%s)", v.url, name, re.ErrorCode)
		}
	}
	return fmt.Errorf("secrets: read %q from %s: %w", name, v.url, err)
}

// Secret is one named secret of a vault; it satisfies
// downstream.SecretSource.
type Secret struct {
	vault *Vault
	name  string
}

// Secret names one secret of the vault.
func (v *Vault) Secret(name string) Secret { return Secret{vault: v, name: strings.TrimSpace(name)} }

// Secret reads the secret's current value and version.
func (s Secret) Secret(ctx context.Context) (value, version string, err error) {
	return s.vault.Get(ctx, s.name)
}
