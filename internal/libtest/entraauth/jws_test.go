package entraauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// TestJWSShapes: jwx verifies the signature, but only after the
// validator's own checks of the compact form and the header, so shapes jwx
// would accept and an Entra token never has are refused first, each with
// its own reason.
func TestJWSShapes(t *testing.T) {
	f := newFixture(t, entraauth.Config{})
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)
	kid := headerOf(t, f.alice)["kid"]
	parts := strings.Split(f.alice, ".")
	for name, tc := range map[string]struct{ token, reason string }{
		// RFC 7797: with b64 false jwx would verify the payload segment as is.
		"b64 false": {signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": kid, "b64": false}, claimsOf(t, f.alice)), "b64"},
		"b64 with crit": {signRS256(t, attacker, map[string]any{"alg": "RS256", "kid": kid, "b64": false, "crit": []string{"b64"}},
			claimsOf(t, f.alice)), "critical"},
		// The JSON serialization jws.Verify parses when the input starts with {.
		"JSON serialization":         {`{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, "three non-empty parts"},
		"signature not base64url":    {parts[0] + "." + parts[1] + "." + strings.Repeat("*", len(parts[2])), "well-formed JWS"},
		"signature of another token": {parts[0] + "." + parts[1] + "." + strings.Split(f.frank, ".")[2], "does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.v.Validate(context.Background(), tc.token)
			var e *entraauth.Error
			if !errors.As(err, &e) || e.Status != 401 || !strings.Contains(e.Description, tc.reason) {
				t.Fatalf("err %v, want a 401 naming %q", err, tc.reason)
			}
		})
	}
	if _, err := f.v.Validate(context.Background(), f.alice); err != nil {
		t.Fatalf("the genuine token: %v", err)
	}
}
