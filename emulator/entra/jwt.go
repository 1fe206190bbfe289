package entra

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxAssertionSize bounds any JWT the emulator parses (client and user assertions).
const maxAssertionSize = 16 << 10

// signJWT makes an RS256 compact JWS with Entra's header (typ, alg, kid, x5t).
func signJWT(k *signingKey, claims map[string]any) (string, error) {
	header := map[string]string{"typ": "JWT", "alg": "RS256", "kid": k.kid, "x5t": k.kid}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(p)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parsedJWT is a compact JWS split and decoded, its signature not yet checked.
type parsedJWT struct {
	header struct {
		Alg     string `json:"alg"`
		Kid     string `json:"kid"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	claims       map[string]any
	signingInput string
	signature    []byte
}

var errMalformedJWT = errors.New("malformed JWT")

func parseJWT(raw string) (*parsedJWT, error) {
	if len(raw) > maxAssertionSize {
		return nil, fmt.Errorf("%w: over %d bytes", errMalformedJWT, maxAssertionSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d segments", errMalformedJWT, len(parts))
	}
	var p parsedJWT
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(h, &p.header) != nil {
		return nil, fmt.Errorf("%w: header", errMalformedJWT)
	}
	c, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload", errMalformedJWT)
	}
	dec := json.NewDecoder(strings.NewReader(string(c)))
	dec.UseNumber()
	if err := dec.Decode(&p.claims); err != nil || p.claims == nil {
		return nil, fmt.Errorf("%w: payload", errMalformedJWT)
	}
	if p.signature, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: signature", errMalformedJWT)
	}
	p.signingInput = parts[0] + "." + parts[1]
	return &p, nil
}

// verify checks the signature with pub under the header's algorithm, which
// must be RS256 or PS256: nothing else is accepted, "none" least of all.
func (p *parsedJWT) verify(pub *rsa.PublicKey) error {
	digest := sha256.Sum256([]byte(p.signingInput))
	switch p.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], p.signature)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], p.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("algorithm %q not accepted", p.header.Alg)
}

func (p *parsedJWT) str(name string) string {
	s, _ := p.claims[name].(string)
	return s
}

// unix reads a NumericDate claim; ok is false when it is absent or not a number.
func (p *parsedJWT) unix(name string) (int64, bool) {
	n, ok := p.claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	return int64(f), err == nil
}

// audiences reads "aud" as a string or an array of strings.
func (p *parsedJWT) audiences() []string {
	switch v := p.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
