package entra

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pkiLeaf signs a leaf certificate with the given CA, as anyone holding the
// CA key (on disk in the state directory) could.
func pkiLeaf(t *testing.T, ca *authority, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "test leaf"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("sign leaf %v %v: %v", dns, ips, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func pkiPool(ca *authority) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func TestPKICAIsNameConstrained(t *testing.T) {
	ca, err := loadOrCreateCA("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := ca.cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v; want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("MaxPathLen = %d, MaxPathLenZero = %v; want 0, true", c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("KeyUsage %b lacks CertSign", c.KeyUsage)
	}
	if !c.PermittedDNSDomainsCritical {
		t.Error("name constraints are not critical")
	}
	if !slices.Equal(c.PermittedDNSDomains, []string{"localhost"}) {
		t.Errorf("PermittedDNSDomains = %q, want [localhost]", c.PermittedDNSDomains)
	}
	var ranges []string
	for _, r := range c.PermittedIPRanges {
		ranges = append(ranges, r.String())
	}
	if want := []string{"127.0.0.1/32", "::1/128"}; !slices.Equal(ranges, want) {
		t.Errorf("PermittedIPRanges = %q, want %q", ranges, want)
	}
	if len(c.ExcludedDNSDomains)+len(c.ExcludedIPRanges)+len(c.PermittedEmailAddresses)+len(c.PermittedURIDomains) != 0 {
		t.Errorf("unexpected other constraints: excluded DNS %q, excluded IP %v, email %q, URI %q",
			c.ExcludedDNSDomains, c.ExcludedIPRanges, c.PermittedEmailAddresses, c.PermittedURIDomains)
	}
	if c.NotAfter.Sub(c.NotBefore) > caLifetime+2*time.Hour {
		t.Errorf("CA valid %v, want at most about %v", c.NotAfter.Sub(c.NotBefore), caLifetime)
	}
}

// TestPKINameConstraintsHold proves the constraints work: even with the CA
// key in hand, a certificate for any real site does not verify.
func TestPKINameConstraintsHold(t *testing.T) {
	ca, err := loadOrCreateCA("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := pkiPool(ca)

	// Control: a loopback leaf signed the same way verifies, so the failures
	// below are the name constraints' doing.
	good := pkiLeaf(t, ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")})
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := good.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("control leaf for %s: %v", name, err)
		}
	}

	for _, tc := range []struct {
		name, host string
		dns        []string
		ips        []net.IP
	}{
		{"foreign DNS name", "example.com", []string{"example.com"}, nil},
		{"foreign IP", "10.0.0.1", nil, []net.IP{net.ParseIP("10.0.0.1")}},
		{"other loopback IPv4", "127.0.0.2", nil, []net.IP{net.ParseIP("127.0.0.2")}},
		{"localhost as a label of a real domain", "localhost.example.com", []string{"localhost.example.com"}, nil},
		{"loopback plus a foreign name", "localhost", []string{"localhost", "login.microsoftonline.com"}, nil},
		{"loopback plus a foreign IP", "127.0.0.1", nil, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("20.190.128.1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := pkiLeaf(t, ca, tc.dns, tc.ips)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.host})
			var invalid x509.CertificateInvalidError
			if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
				t.Fatalf("Verify = %v, want CertificateInvalidError CANotAuthorizedForThisName", err)
			}
		})
	}

	t.Run("no intermediate CA", func(t *testing.T) {
		// MaxPathLenZero: a sub-CA the CA signs cannot issue anything that verifies.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "sub CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		leaf := pkiLeaf(t, &authority{cert: sub, key: key}, []string{"localhost"}, nil)
		inter := x509.NewCertPool()
		inter.AddCert(sub)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "localhost"})
		var invalid x509.CertificateInvalidError
		if !errors.As(err, &invalid) || invalid.Reason != x509.TooManyIntermediates {
			t.Fatalf("leaf issued by a sub-CA: Verify = %v, want CertificateInvalidError TooManyIntermediates", err)
		}
	})
}

func TestPKIServerCertificate(t *testing.T) {
	ca, err := loadOrCreateCA("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.serverCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificate) != 2 || string(tc.Certificate[1]) != string(ca.cert.Raw) {
		t.Errorf("chain has %d certificates, want leaf then CA", len(tc.Certificate))
	}
	leaf, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if tc.Leaf == nil || string(tc.Leaf.Raw) != string(leaf.Raw) {
		t.Error("Leaf is not the chain's first certificate")
	}
	if leaf.IsCA {
		t.Error("server certificate is a CA")
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pkiPool(ca), DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pkiPool(ca), DNSName: "example.com"}); err == nil {
		t.Error("server certificate verified for example.com")
	}
	// Only the CA: a system pool does not trust it.
	other, err := loadOrCreateCA("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pkiPool(other), DNSName: "localhost"}); err == nil {
		t.Error("server certificate verified under another emulator's CA")
	}
}

func TestPKIServerCertificateEndsWithCA(t *testing.T) {
	start := time.Now()
	ca, err := loadOrCreateCA("", start)
	if err != nil {
		t.Fatal(err)
	}
	late := start.Add(caLifetime - 30*24*time.Hour) // less than serverLifetime before the CA expires
	tc, err := ca.serverCertificate(late)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Leaf.NotAfter.After(ca.cert.NotAfter) {
		t.Errorf("server certificate ends %v, after its CA (%v)", tc.Leaf.NotAfter, ca.cert.NotAfter)
	}
	if _, err := tc.Leaf.Verify(x509.VerifyOptions{Roots: pkiPool(ca), DNSName: "localhost", CurrentTime: late}); err != nil {
		t.Errorf("late server certificate: %v", err)
	}
}

// TestPKIServesTLS makes real handshakes against the loopback names.
func TestPKIServesTLS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{BaseURL: "https://" + l.Addr().String()})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	}()
	hc := srv.HTTPClient()
	defer hc.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		u := "https://" + net.JoinHostPort(host, port) + "/common/v2.0/.well-known/openid-configuration"
		resp, err := hc.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !resp.TLS.PeerCertificates[0].Equal(srv.TLSConfig().Certificates[0].Leaf) {
			t.Errorf("GET %s: not served with the emulator's certificate", u)
		}
	}
}

func TestPKIStateFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	srv, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{caKeyFile, signingKeysFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, perm)
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(caPEM) != string(srv.CAPEM()) {
		t.Error("ca.pem differs from CAPEM()")
	}
	block, rest := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("ca.pem is not one PEM certificate")
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || !c.IsCA {
		t.Fatalf("ca.pem: %v", err)
	}
	if strings.Contains(string(caPEM), "PRIVATE KEY") {
		t.Error("ca.pem holds a private key")
	}
	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("leftover %s", e.Name())
		}
	}

	// A key file someone widened is narrowed again when next written.
	keysPath := filepath.Join(dir, signingKeysFile)
	if err := os.Chmod(keysPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keysPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s mode %v after rotation, want 0600", signingKeysFile, perm)
	}
}

func TestPKICAReloadAndRenewal(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, err := loadOrCreateCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadOrCreateCA(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.cert.Equal(first.cert) || string(again.pem) != string(first.pem) {
		t.Fatal("CA not reused from the state directory")
	}
	if !again.key.Public().(*ecdsa.PublicKey).Equal(first.key.Public()) {
		t.Fatal("CA key not reused from the state directory")
	}
	// Within a day of expiry the CA is replaced, and the replacement kept.
	late := first.cert.NotAfter.Add(-time.Hour)
	renewed, err := loadOrCreateCA(dir, late)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.cert.Equal(first.cert) {
		t.Fatal("expiring CA not renewed")
	}
	if !late.Before(renewed.cert.NotAfter) {
		t.Fatalf("renewed CA ends %v", renewed.cert.NotAfter)
	}
	kept, err := loadOrCreateCA(dir, late)
	if err != nil {
		t.Fatal(err)
	}
	if !kept.cert.Equal(renewed.cert) {
		t.Fatal("renewed CA not persisted")
	}
}

func TestPKICorruptStateIsAnError(t *testing.T) {
	for _, name := range []string{caCertFile, caKeyFile, signingKeysFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := New(Config{StateDir: dir}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := New(Config{StateDir: dir}); err == nil {
				t.Fatalf("New accepted a corrupt %s (and would replace the state silently)", name)
			}
		})
	}
}

// pkiJWKS fetches the published keys through the handler.
func pkiJWKS(t *testing.T, srv *Server) []jwk {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/common/discovery/v2.0/keys", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET keys: %d %s", rec.Code, rec.Body)
	}
	var body struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range body.Keys {
		// The x5c certificate is the key, and kid is its thumbprint.
		der, err := base64.StdEncoding.DecodeString(k.X5c[0])
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if !cert.PublicKey.(*rsa.PublicKey).Equal(pkiJWKKey(t, k)) {
			t.Errorf("key %s: x5c does not match n/e", k.Kid)
		}
		if k.Kid != thumbprint(cert) || k.X5t != k.Kid {
			t.Errorf("key %s: kid/x5t is not the x5c thumbprint", k.Kid)
		}
	}
	return body.Keys
}

func pkiKids(keys []jwk) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return out
}

func pkiJWKKey(t *testing.T, k jwk) *rsa.PublicKey {
	t.Helper()
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		t.Fatal(err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		t.Fatal(err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// pkiToken gets an app-only token from the token endpoint.
func pkiToken(t *testing.T, srv *Server) string {
	t.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {TaskAPIClientID},
		"client_secret": {TaskAPISecret},
		"scope":         {AuditClientID + "/.default"},
	}
	req := httptest.NewRequest(http.MethodPost, "/"+HomeTenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.AccessToken == "" {
		t.Fatalf("token response %s: %v", rec.Body, err)
	}
	return resp.AccessToken
}

// pkiVerify checks an RS256 token against published keys and returns its kid.
func pkiVerify(t *testing.T, tok string, keys []jwk) (kid string, err error) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Alg, Kid string }
	if err := json.Unmarshal(h, &header); err != nil {
		t.Fatal(err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if header.Alg != "RS256" {
		t.Fatalf("alg %q", header.Alg)
	}
	for _, k := range keys {
		if k.Kid == header.Kid {
			digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			return header.Kid, rsa.VerifyPKCS1v15(pkiJWKKey(t, k), crypto.SHA256, digest[:], sig)
		}
	}
	return header.Kid, errors.New("kid " + header.Kid + " not published")
}

func TestPKIStateReuse(t *testing.T) {
	dir := t.TempDir()
	first, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tok := pkiToken(t, first)

	second, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if string(second.CAPEM()) != string(first.CAPEM()) {
		t.Error("second instance has another CA")
	}
	if second.SigningKeyID() != first.SigningKeyID() {
		t.Errorf("second instance signs with %s, first with %s", second.SigningKeyID(), first.SigningKeyID())
	}
	keys := pkiJWKS(t, second)
	if !slices.Contains(pkiKids(keys), first.SigningKeyID()) {
		t.Errorf("second instance publishes %q, not the first's kid %s", pkiKids(keys), first.SigningKeyID())
	}
	// A token of the first instance still verifies after the restart.
	if kid, err := pkiVerify(t, tok, keys); err != nil {
		t.Errorf("first instance's token (kid %s) against second's keys: %v", kid, err)
	}
	// The second instance's server certificate chains to the kept CA.
	leaf := second.TLSConfig().Certificates[0].Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: first.CertPool(), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("second server certificate under first CA: %v", err)
	}

	// Without a state directory every instance is new.
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CAPEM()) == string(b.CAPEM()) || a.SigningKeyID() == b.SigningKeyID() {
		t.Error("in-memory instances share a CA or signing key")
	}
}

func TestPKISigningKeyRotation(t *testing.T) {
	dir := t.TempDir()
	srv, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	kid0 := srv.SigningKeyID()
	tok0 := pkiToken(t, srv)
	if got := pkiKids(pkiJWKS(t, srv)); !slices.Equal(got, []string{kid0}) {
		t.Fatalf("fresh JWKS = %q, want [%s]", got, kid0)
	}

	if err := srv.RotateSigningKeys(); err != nil {
		t.Fatal(err)
	}
	kid1 := srv.SigningKeyID()
	if kid1 == kid0 {
		t.Fatal("rotation kept the kid")
	}
	keys := pkiJWKS(t, srv)
	if got := pkiKids(keys); !slices.Contains(got, kid0) || !slices.Contains(got, kid1) || len(got) != 2 {
		t.Fatalf("JWKS after rotation = %q, want %s and %s", got, kid1, kid0)
	}
	if _, err := pkiVerify(t, tok0, keys); err != nil {
		t.Errorf("token of the old key after rotation: %v", err)
	}
	tok1 := pkiToken(t, srv)
	if kid, err := pkiVerify(t, tok1, keys); err != nil || kid != kid1 {
		t.Errorf("new token signed by %s (%v), want %s", kid, err, kid1)
	}

	// The rotation is persisted: a restart signs with the new key and still
	// publishes the old one.
	restarted, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if restarted.SigningKeyID() != kid1 {
		t.Errorf("after restart signs with %s, want %s", restarted.SigningKeyID(), kid1)
	}
	if got := pkiKids(pkiJWKS(t, restarted)); !slices.Contains(got, kid0) || !slices.Contains(got, kid1) {
		t.Errorf("after restart JWKS = %q, want %s and %s", got, kid1, kid0)
	}

	// The bound: after three more rotations at most three keys, the newest first.
	var kids []string
	for range 3 {
		if err := srv.RotateSigningKeys(); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, srv.SigningKeyID())
	}
	got := pkiKids(pkiJWKS(t, srv))
	if len(got) > maxPublishedKeys || len(got) != 3 {
		t.Fatalf("JWKS after 4 rotations has %d keys %q, want 3", len(got), got)
	}
	if got[0] != srv.SigningKeyID() {
		t.Errorf("JWKS starts with %s, want the signing key %s", got[0], srv.SigningKeyID())
	}
	for _, k := range kids {
		if !slices.Contains(got, k) {
			t.Errorf("JWKS %q lacks recent key %s", got, k)
		}
	}
	if slices.Contains(got, kid0) {
		t.Errorf("JWKS %q still has the first key %s", got, kid0)
	}

	// Retiring leaves the signing key alone, also after a restart.
	signing := srv.SigningKeyID()
	if err := srv.RetireOldSigningKeys(); err != nil {
		t.Fatal(err)
	}
	if got := pkiKids(pkiJWKS(t, srv)); !slices.Equal(got, []string{signing}) {
		t.Fatalf("JWKS after retire = %q, want [%s]", got, signing)
	}
	if srv.SigningKeyID() != signing {
		t.Errorf("retire changed the signing key")
	}
	if _, err := pkiVerify(t, tok1, pkiJWKS(t, srv)); err == nil {
		t.Error("token of a retired key still verifies")
	}
	restarted, err = New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := pkiKids(pkiJWKS(t, restarted)); !slices.Equal(got, []string{signing}) || restarted.SigningKeyID() != signing {
		t.Errorf("after retire and restart: signs with %s, JWKS %q; want %s alone", restarted.SigningKeyID(), got, signing)
	}
}

func TestPKIInMemoryKeysWriteNothing(t *testing.T) {
	r, err := loadOrCreateKeys("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.path != "" {
		t.Fatalf("path %q", r.path)
	}
	if err := r.rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(r.jwks()) != 2 {
		t.Errorf("%d keys after one rotation, want 2", len(r.jwks()))
	}
}

func TestPKINewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:7070",
		"ftp://127.0.0.1:7070",
		"https://127.0.0.1:7070/path",
		"https://127.0.0.1:7070/common/",
		"https://",
		"https:///",
		"https:///path",
		"127.0.0.1:7070",
		"https://127.0.0.1:notaport",
	} {
		t.Run(u, func(t *testing.T) {
			srv, err := New(Config{BaseURL: u})
			if err == nil {
				t.Fatalf("New accepted base URL %q (BaseURL() = %q)", u, srv.BaseURL())
			}
			if !strings.Contains(err.Error(), "https://host[:port]") {
				t.Errorf("error %q does not say what a base URL must be", err)
			}
		})
	}
	for u, want := range map[string]string{
		"":                        DefaultBaseURL,
		"https://127.0.0.1:7070/": "https://127.0.0.1:7070",
		"https://localhost:8443":  "https://localhost:8443",
	} {
		srv, err := New(Config{BaseURL: u})
		if err != nil {
			t.Errorf("New(%q): %v", u, err)
			continue
		}
		if srv.BaseURL() != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", u, srv.BaseURL(), want)
		}
		if iss := srv.Issuer(HomeTenantID); iss != want+"/"+HomeTenantID+"/v2.0" {
			t.Errorf("New(%q).Issuer = %q", u, iss)
		}
	}
}

// TestPKINewRejectsBaseURLExtras covers base URLs that pass the scheme, host
// and path checks but still make malformed issuers and endpoints
// ("https://h?x=1/<tid>/v2.0", "https://h//<tid>/v2.0").
func TestPKINewRejectsBaseURLExtras(t *testing.T) {
	for _, u := range []string{
		"https://127.0.0.1:7070?x=1",
		"https://127.0.0.1:7070#frag",
		"https://user:pass@127.0.0.1:7070",
		"https://127.0.0.1:7070//",
	} {
		t.Run(u, func(t *testing.T) {
			srv, err := New(Config{BaseURL: u})
			if err == nil {
				t.Errorf("New accepted base URL %q; issuer would be %q", u, srv.Issuer(HomeTenantID))
			}
		})
	}
}
