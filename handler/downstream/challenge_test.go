package downstream

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestChallenge(t *testing.T) {
	claims := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"consent", &ConsentRequiredError{TokenError: &TokenError{Code: 65001}, Scopes: []string{"notify/.default"}},
			[]string{`error="consent_required"`, `scope="notify/.default"`, `client_id="api"`, `authorization_uri="https://login.example/tid/oauth2/v2.0/authorize"`}},
		{"claims challenge", &InteractionRequiredError{TokenError: &TokenError{Code: 50076, Claims: claims}},
			[]string{`error="insufficient_claims"`, `claims="` + base64.StdEncoding.EncodeToString([]byte(claims)) + `"`}},
		{"wrapped", errors.Join(errors.New("notify"), &InteractionRequiredError{TokenError: &TokenError{Code: 50079}}),
			[]string{`error="interaction_required"`}},
	} {
		h, ok := Challenge(tc.err, "https://login.example/", "tid", "api")
		if !ok || !strings.HasPrefix(h, "Bearer ") {
			t.Fatalf("%s: %q %v", tc.name, h, ok)
		}
		for _, w := range tc.want {
			if !strings.Contains(h, w) {
				t.Errorf("%s: %q lacks %s", tc.name, h, w)
			}
		}
	}
	if _, ok := Challenge(&CredentialError{TokenError: &TokenError{Code: 7000215}}, "https://x", "t", "a"); ok {
		t.Error("a credential error made a user challenge")
	}
	if _, ok := Challenge(ErrTransient, "https://x", "t", "a"); ok {
		t.Error("a transient error made a user challenge")
	}
}
