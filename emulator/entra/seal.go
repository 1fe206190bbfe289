package entra

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// sealKeyFrom derives the key that authenticates refresh tokens and sign-in
// sessions. They are opaque to clients: a payload and an HMAC, never a JWT,
// so no validator can mistake one for an access token.
func sealKeyFrom(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("handoff entra emulator seal v1"))
	return mac.Sum(nil), nil
}

func (s *Server) seal(kind string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(payload)
	return kind + "~" + body + "~" + s.mac(kind, body), nil
}

var errBadSeal = errors.New("not issued by this emulator")

func (s *Server) unseal(kind, sealed string, v any) error {
	parts := strings.Split(sealed, "~")
	if len(parts) != 3 || parts[0] != kind || !hmac.Equal([]byte(parts[2]), []byte(s.mac(kind, parts[1]))) {
		return errBadSeal
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errBadSeal
	}
	return json.Unmarshal(payload, v)
}

func (s *Server) mac(kind, body string) string {
	m := hmac.New(sha256.New, s.sealKey)
	m.Write([]byte(kind + "~" + body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
