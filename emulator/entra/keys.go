package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const (
	signingKeysFile = "signing-keys.json"
	// maxPublishedKeys bounds the JWKS: after a rotation the previous keys stay
	// published (tokens they signed remain valid), the oldest beyond this drop out.
	maxPublishedKeys = 3
)

type signingKey struct {
	kid  string // base64url SHA-1 thumbprint of cert, as Entra's kid and x5t
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// keyRing holds the token signing keys: the newest signs, all are published.
type keyRing struct {
	mu   sync.RWMutex
	keys []*signingKey // newest first
	path string        // "" keeps the keys in memory only
}

type storedKey struct {
	Key  []byte `json:"pkcs8"`
	Cert []byte `json:"cert"`
}

func loadOrCreateKeys(dir string, now time.Time) (*keyRing, error) {
	r := &keyRing{}
	if dir != "" {
		r.path = filepath.Join(dir, signingKeysFile)
		data, err := os.ReadFile(r.path)
		switch {
		case err == nil:
			var stored []storedKey
			if err := json.Unmarshal(data, &stored); err != nil {
				return nil, fmt.Errorf("entra: %s: %w", r.path, err)
			}
			for _, s := range stored {
				k, err := parseStoredKey(s)
				if err != nil {
					return nil, fmt.Errorf("entra: %s: %w", r.path, err)
				}
				r.keys = append(r.keys, k)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if len(r.keys) == 0 {
		if err := r.rotate(now); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func parseStoredKey(s storedKey) (*signingKey, error) {
	pk, err := x509.ParsePKCS8PrivateKey(s.Key)
	if err != nil {
		return nil, err
	}
	key, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("signing key is not RSA")
	}
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: thumbprint(cert), key: key, cert: cert}, nil
}

func newSigningKey(now time.Time) (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	// Entra publishes each key with a self-signed certificate (x5c).
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "handoff entra emulator token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: thumbprint(cert), key: key, cert: cert}, nil
}

func thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// rotate makes a new signing key; the old ones stay published up to the bound.
func (r *keyRing) rotate(now time.Time) error {
	k, err := newSigningKey(now)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append([]*signingKey{k}, r.keys...)
	if len(r.keys) > maxPublishedKeys {
		r.keys = r.keys[:maxPublishedKeys]
	}
	return r.saveLocked()
}

// retire drops every key but the signing one, so tokens of older keys fail.
func (r *keyRing) retire() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = r.keys[:1]
	return r.saveLocked()
}

func (r *keyRing) saveLocked() error {
	if r.path == "" {
		return nil
	}
	stored := make([]storedKey, 0, len(r.keys))
	for _, k := range r.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return err
		}
		stored = append(stored, storedKey{Key: der, Cert: k.cert.Raw})
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	return writePrivate(r.path, data)
}

func (r *keyRing) signer() *signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[0]
}

func (r *keyRing) lookup(kid string) *signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// jwk is a key as Entra publishes it: no "alg".
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

func (r *keyRing) jwks() []jwk {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]jwk, 0, len(r.keys))
	for _, k := range r.keys {
		pub := k.key.PublicKey
		out = append(out, jwk{
			Kty: "RSA", Use: "sig", Kid: k.kid, X5t: k.kid,
			N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			X5c: []string{base64.StdEncoding.EncodeToString(k.cert.Raw)},
		})
	}
	return out
}
