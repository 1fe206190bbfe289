package downstream

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/handoff-dev/handoff/handler/internal/flight"
)

// A Credential proves the app's identity to Entra ID. Build one with
// [ClientSecret], [Certificate], [CertificateFromPEM],
// [FederatedManagedIdentity], [RotatingSecret] or [RotatingCertificate].
//
// MSAL fixes a credential when a client is built, so a Credential reports a
// version: when it changes (a rotated Key Vault secret), the clients are
// rebuilt.
type Credential interface {
	// current returns the MSAL credential and its version.
	current(ctx context.Context) (confidential.Credential, string, error)
	// refused tells the credential Entra refused it, so a rotating one reads
	// its source again before the next request.
	refused()
	// kind names the credential for logs.
	kind() string
}

type staticCredential struct {
	cred confidential.Credential
	name string
}

func (s staticCredential) current(context.Context) (confidential.Credential, string, error) {
	return s.cred, "static", nil
}
func (staticCredential) refused()       {}
func (s staticCredential) kind() string { return s.name }

// ClientSecret is a fixed client secret. Prefer [FederatedManagedIdentity]
// in Azure, or [RotatingSecret] from Key Vault: a secret in a setting is
// rotated only by a redeployment.
func ClientSecret(secret string) (Credential, error) {
	if secret == "" {
		return nil, errors.New("downstream: empty client secret")
	}
	c, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		return nil, err
	}
	return staticCredential{c, "client secret"}, nil
}

// Certificate is a certificate whose public key is registered on the app.
func Certificate(certs []*x509.Certificate, key crypto.PrivateKey) (Credential, error) {
	c, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return nil, fmt.Errorf("downstream: certificate: %w", err)
	}
	return staticCredential{c, "certificate"}, nil
}

// CertificateFromPEM reads a PEM bundle holding the certificate and its
// unencrypted private key.
func CertificateFromPEM(pemData []byte) (Credential, error) {
	certs, key, err := confidential.CertFromPEM(pemData, "")
	if err != nil {
		return nil, fmt.Errorf("downstream: certificate PEM: %w", err)
	}
	return Certificate(certs, key)
}

// tokenExchangeScope is the scope of the managed identity token that a
// federated identity credential trusts.
const tokenExchangeScope = "api://AzureADTokenExchange/.default"

// FederatedManagedIdentity proves the app's identity with no secret at all:
// a token of the app's managed identity (tc, usually azidentity's
// ManagedIdentityCredential) for api://AzureADTokenExchange, which the app
// registration trusts as a federated identity credential. Microsoft's
// recommended production setup.
func FederatedManagedIdentity(tc azcore.TokenCredential) Credential {
	cb := func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
		tok, err := tc.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
		if err != nil {
			return "", fmt.Errorf("downstream: managed identity token for the federated credential: %w", err)
		}
		return tok.Token, nil
	}
	return staticCredential{confidential.NewCredFromAssertionCallback(cb), "managed identity (federated credential)"}
}

// A SecretSource reads a secret's current value and version, e.g. a Key
// Vault secret (see package secrets).
type SecretSource interface {
	Secret(ctx context.Context) (value, version string, err error)
}

// DefaultSecretRefresh is how often rotating credentials read their source again.
const DefaultSecretRefresh = 5 * time.Minute

// RotationOptions configure [RotatingSecret] and [RotatingCertificate].
type RotationOptions struct {
	// Refresh is how often the source is read again; 0 means 5 minutes.
	Refresh time.Duration
	// Logger: nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RotatingSecret is a client secret read from src, read again every
// refresh and at once after Entra refuses it, so a rotated secret is used
// without a restart. While src cannot be read, the last value is kept.
func RotatingSecret(src SecretSource, opts RotationOptions) Credential {
	return newRotating(src, opts, "client secret from Key Vault", func(v string) (confidential.Credential, error) {
		return confidential.NewCredFromSecret(v)
	})
}

// RotatingCertificate is a PEM certificate and its key read from src, as
// [RotatingSecret] (Key Vault keeps a certificate with its key as a secret).
func RotatingCertificate(src SecretSource, opts RotationOptions) Credential {
	return newRotating(src, opts, "certificate from Key Vault", func(v string) (confidential.Credential, error) {
		certs, key, err := confidential.CertFromPEM([]byte(v), "")
		if err != nil {
			return confidential.Credential{}, err
		}
		return confidential.NewCredFromCert(certs, key)
	})
}

type rotating struct {
	src     SecretSource
	refresh time.Duration
	log     *slog.Logger
	name    string
	build   func(string) (confidential.Credential, error)
	now     func() time.Time

	mu       sync.Mutex
	cred     confidential.Credential
	version  string
	readAt   time.Time
	stale    bool      // read again before the next use
	reading  bool      // a read is under way
	forcedAt time.Time // of the last re-read a refusal forced
	flight   flight.Group[held]
}

func newRotating(src SecretSource, opts RotationOptions, name string, build func(string) (confidential.Credential, error)) *rotating {
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultSecretRefresh
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &rotating{src: src, refresh: opts.Refresh, log: opts.Logger, name: name, build: build, now: opts.Now}
	r.flight.Timeout = secretReadTimeout
	return r
}

// secretReadTimeout bounds one read of the source (a Key Vault request,
// with azcore's retries).
const secretReadTimeout = 30 * time.Second

func (r *rotating) kind() string { return r.name }

// minRereadAfterRefusal spaces re-reads that refusals trigger: a wrong
// secret in the vault must not turn every request into a vault read.
const minRereadAfterRefusal = 10 * time.Second

func (r *rotating) refused() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forcedAt.IsZero() || r.now().Sub(r.forcedAt) >= minRereadAfterRefusal {
		r.stale, r.forcedAt = true, r.now()
	}
}

func (r *rotating) current(ctx context.Context) (confidential.Credential, string, error) {
	r.mu.Lock()
	fresh := !r.stale && r.now().Sub(r.readAt) < r.refresh
	if r.version != "" && (fresh || r.reading) {
		// Fresh, or being read by another request: use the last value.
		defer r.mu.Unlock()
		return r.cred, r.version, nil
	}
	r.reading = true
	r.mu.Unlock()
	// Concurrent first reads share one.
	got, err := r.flight.Do(ctx, "read", func(ctx context.Context) (held, error) { return r.read(ctx) })
	return got.cred, got.version, err
}

// held is a credential and its version.
type held struct {
	cred    confidential.Credential
	version string
}

// read reads the source once and keeps what it read.
func (r *rotating) read(ctx context.Context) (held, error) {
	value, version, err := r.src.Secret(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.reading = false
	if err == nil && value == "" {
		err = errors.New("the secret is empty")
	}
	if err != nil {
		if r.version != "" {
			// Keep serving the last value; try again at the next refresh.
			r.log.WarnContext(ctx, "downstream: could not read the credential again; keeping the last one", "credential", r.name, "error", err.Error())
			r.readAt, r.stale = r.now(), false
			return held{r.cred, r.version}, nil
		}
		return held{}, fmt.Errorf("downstream: read %s: %w", r.name, err)
	}
	if version == "" {
		sum := sha256.Sum256([]byte(value))
		version = hex.EncodeToString(sum[:8])
	}
	r.readAt, r.stale = r.now(), false
	if version == r.version {
		return held{r.cred, r.version}, nil
	}
	cred, err := r.build(value)
	if err != nil {
		return held{}, fmt.Errorf("downstream: %s: %w", r.name, err)
	}
	if r.version != "" {
		r.log.InfoContext(ctx, "downstream: credential changed; rebuilding token clients", "credential", r.name, "version", version)
	}
	r.cred, r.version = cred, version
	return held{r.cred, r.version}, nil
}
