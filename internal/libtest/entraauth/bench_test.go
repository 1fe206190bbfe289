package entraauth_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// BenchmarkValidate validates token A with the keys cached and the token
// cache off: the per-request cost of authentication for a token seen for
// the first time. Compare it with BenchmarkRSAVerify (make bench).
func BenchmarkValidate(b *testing.B) {
	benchmarkValidate(b, entraauth.Config{TokenCacheSize: -1})
}

// BenchmarkValidateCached validates token A again with the token cache on
// (the default): the cost of a token presented before.
func BenchmarkValidateCached(b *testing.B) {
	benchmarkValidate(b, entraauth.Config{})
}

func benchmarkValidate(b *testing.B, cfg entraauth.Config) {
	f := newFixture(b, cfg)
	ctx := context.Background()
	if _, err := f.v.Validate(ctx, f.alice); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Validate(ctx, f.alice); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerify is the baseline: a bare RSA-2048 PKCS#1 v1.5 verify of
// the same token's signature, the work no validator can avoid.
func BenchmarkRSAVerify(b *testing.B) {
	f := newFixture(b, entraauth.Config{})
	block, _ := pem.Decode(firstPublicKeyPEM(b, f.srv))
	pk, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	pub := pk.(*rsa.PublicKey)
	i := strings.LastIndex(f.alice, ".")
	input, sig := f.alice[:i], decode(f.alice[i+1:])
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256([]byte(input))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
