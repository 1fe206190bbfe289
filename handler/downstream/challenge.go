package downstream

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Challenge is the WWW-Authenticate value an API answers its own caller
// with when a downstream token needs the user (consent, MFA, a claims
// challenge), in the form Entra and MSAL.js understand:
//
//	Bearer realm="", authorization_uri="{authority}/{tenant}/oauth2/v2.0/authorize", client_id="{api}", error="insufficient_claims", claims="{base64}"
//
// error is "insufficient_claims" when Entra sent a claims challenge, else
// "consent_required" or "interaction_required", with the downstream scopes.
// ok is false for errors no user action fixes.
func Challenge(err error, authority, tenantID, apiClientID string) (header string, ok bool) {
	var (
		code   string
		claims string
		scopes []string
	)
	var cr *ConsentRequiredError
	var ir *InteractionRequiredError
	switch {
	case errors.As(err, &cr):
		code, claims, scopes = "consent_required", cr.Claims, cr.Scopes
	case errors.As(err, &ir):
		code, claims, scopes = "interaction_required", ir.Claims, ir.Scopes
	default:
		return "", false
	}
	parts := []string{
		`realm=""`,
		`authorization_uri="` + strings.TrimSuffix(authority, "/") + "/" + tenantID + `/oauth2/v2.0/authorize"`,
		`client_id="` + apiClientID + `"`,
	}
	if claims != "" {
		parts = append(parts, `error="insufficient_claims"`, `claims="`+base64.StdEncoding.EncodeToString([]byte(claims))+`"`)
	} else {
		parts = append(parts, `error="`+code+`"`)
	}
	if len(scopes) > 0 {
		parts = append(parts, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	return "Bearer " + strings.Join(parts, ", "), true
}
