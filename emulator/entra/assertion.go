package entra

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// verifyClientAssertion checks a private_key_jwt client assertion. One signed
// by the emulator's own keys is a federated credential (a managed identity
// token) and must match one of the app's federated identity credentials;
// anything else must be signed by one of the app's certificates.
// It returns which credential matched: "certificate/{id}" or "federated/{name}".
func (s *Server) verifyClientAssertion(app *Application, raw string, ref tenantRef) (string, *stsError) {
	a, err := parseJWT(raw)
	if err != nil {
		return "", errClientAssertionInvalid(err.Error())
	}
	now := s.now()
	exp, ok := a.unix("exp")
	if !ok || !now.Before(time.Unix(exp, 0).Add(clockSkew)) {
		return "", errClientAssertionInvalid("the assertion is expired or has no exp")
	}
	if nbf, ok := a.unix("nbf"); ok && time.Unix(nbf, 0).After(now.Add(clockSkew)) {
		return "", errClientAssertionInvalid("the assertion is not yet valid")
	}
	if k := s.keys.lookup(a.header.Kid); a.header.Kid != "" && k != nil {
		if a.header.Alg != "RS256" || a.verify(&k.key.PublicKey) != nil {
			return "", errClientAssertionSignature(app.ClientID)
		}
		return s.matchFederatedCredential(app, a)
	}
	if a.str("iss") != app.ClientID || a.str("sub") != app.ClientID {
		return "", errClientAssertionInvalid("iss and sub must both be the client id")
	}
	if !slices.ContainsFunc(a.audiences(), func(aud string) bool { return s.isTokenEndpoint(aud, ref) }) {
		return "", errClientAssertionInvalid("aud must be this tenant's token endpoint")
	}
	cert := app.certificateFor(a.header.X5tS256, a.header.X5t)
	if cert == nil {
		return "", errClientAssertionSignature(app.ClientID)
	}
	pub, ok := cert.cert.PublicKey.(*rsa.PublicKey)
	if !ok || a.verify(pub) != nil {
		return "", errClientAssertionSignature(app.ClientID)
	}
	return "certificate/" + cert.ID, nil
}

// isTokenEndpoint accepts the token endpoint of the request's tenant, named
// by the segment as requested or by tenant id.
func (s *Server) isTokenEndpoint(aud string, ref tenantRef) bool {
	for _, seg := range []string{ref.segment, tenantIDOf(ref)} {
		if seg != "" && strings.EqualFold(aud, s.baseStr+"/"+seg+"/oauth2/v2.0/token") {
			return true
		}
	}
	return false
}

func tenantIDOf(ref tenantRef) string {
	if ref.tenant == nil {
		return ""
	}
	return ref.tenant.ID
}

func (s *Server) matchFederatedCredential(app *Application, a *parsedJWT) (string, *stsError) {
	iss, sub, auds := a.str("iss"), a.str("sub"), a.audiences()
	issuerKnown, subjectKnown := false, false
	for _, fic := range app.FederatedCredentials {
		if strings.ReplaceAll(fic.Issuer, "{base}", s.baseStr) != iss {
			continue
		}
		issuerKnown = true
		if fic.Subject != sub {
			continue
		}
		subjectKnown = true
		for _, aud := range auds {
			// Managed identity tokens for api://AzureADTokenExchange carry
			// the exchange app's id as aud; Entra treats the two as one.
			if slices.Contains(fic.Audiences, aud) || (aud == TokenExchangeAppID && slices.Contains(fic.Audiences, TokenExchangeURI)) {
				return "federated/" + fic.Name, nil
			}
		}
	}
	switch {
	case !issuerKnown:
		return "", errFederatedIssuer(app.ClientID, iss)
	case !subjectKnown:
		return "", errFederatedSubject(app.ClientID, iss, sub)
	}
	return "", errFederatedAudience(app.ClientID, strings.Join(auds, " "))
}

// certificateFor finds the certificate a thumbprint names. MSAL sends
// x5t#S256 in standard base64 with padding; RFC 7515 says base64url. Both work.
func (a *Application) certificateFor(x5tS256, x5t string) *Certificate {
	want256, want1 := decodeThumbprint(x5tS256), decodeThumbprint(x5t)
	for i := range a.Certificates {
		c := &a.Certificates[i]
		if c.cert == nil {
			continue
		}
		s256, s1 := sha256.Sum256(c.cert.Raw), sha1.Sum(c.cert.Raw)
		if (want256 != nil && bytes.Equal(want256, s256[:])) || (want1 != nil && bytes.Equal(want1, s1[:])) {
			return c
		}
	}
	return nil
}

func decodeThumbprint(t string) []byte {
	if t == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			return b
		}
	}
	return nil
}
