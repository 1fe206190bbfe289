package downstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// TokenError is an answer of the token endpoint that no retry will change.
// Callers branch on the more specific types that embed it:
// [*ConsentRequiredError], [*InteractionRequiredError],
// [*InvalidAssertionError] and [*CredentialError].
type TokenError struct {
	Status        int    // HTTP status of the token endpoint
	OAuthError    string // error, e.g. invalid_grant
	Code          int    // the AADSTS number
	Suberror      string
	Claims        string // a claims challenge to pass on, if any
	CorrelationID string
	Description   string // Entra's description, safe to log
}

// Error names the AADSTS code and the correlation id to quote to Microsoft.
func (e *TokenError) Error() string {
	return fmt.Sprintf("downstream: token request refused: AADSTS%d %s (correlation id %s)", e.Code, e.OAuthError, e.CorrelationID)
}

// ConsentRequiredError: the user or an admin has not consented to the
// downstream scopes (AADSTS65001). Scopes and Claims let an API answer its
// caller with a challenge, or report the reason beside a side effect.
type ConsentRequiredError struct {
	*TokenError
	Scopes []string
}

// Error names the scopes that lack consent.
func (e *ConsentRequiredError) Error() string {
	return fmt.Sprintf("downstream: consent required for %s: an admin of the user's tenant must grant it (AADSTS%d, correlation id %s)",
		strings.Join(e.Scopes, " "), e.Code, e.CorrelationID)
}

// Unwrap returns the token endpoint's answer.
func (e *ConsentRequiredError) Unwrap() error { return e.TokenError }

// InteractionRequiredError: the user must sign in again interactively (MFA,
// Conditional Access, a claims challenge). Claims is the challenge to relay.
type InteractionRequiredError struct {
	*TokenError
	Scopes []string
}

// Error names the scopes that need the user.
func (e *InteractionRequiredError) Error() string {
	return fmt.Sprintf("downstream: interaction required for %s (AADSTS%d, correlation id %s)", strings.Join(e.Scopes, " "), e.Code, e.CorrelationID)
}

// Unwrap returns the token endpoint's answer.
func (e *InteractionRequiredError) Unwrap() error { return e.TokenError }

// InvalidAssertionError: the incoming user token cannot be exchanged
// (expired, for another audience, app-only, tampered). The caller should
// get a 401 and sign in again.
type InvalidAssertionError struct{ *TokenError }

// Error says why the user's token was refused.
func (e *InvalidAssertionError) Error() string {
	return fmt.Sprintf("downstream: the user's token cannot be exchanged: %s (AADSTS%d)", assertionReason(e.Code), e.Code)
}

// Unwrap returns the token endpoint's answer.
func (e *InvalidAssertionError) Unwrap() error { return e.TokenError }

// CredentialError: the app's own credential is refused by Entra (Code is
// the AADSTS number), or cannot be read or built at all (Code 0, Err the
// cause, e.g. secrets.ErrAccessDenied). This is a configuration error; Fix
// says what to change. It is never retried.
type CredentialError struct {
	*TokenError
	Fix string
	Err error
}

// Error says what to fix.
func (e *CredentialError) Error() string {
	if e.Code == 0 {
		return "downstream: the app's credential cannot be read: " + e.Fix
	}
	return fmt.Sprintf("downstream: the app's credential was refused (AADSTS%d): %s", e.Code, e.Fix)
}

// Unwrap returns the token endpoint's answer and, when the credential could
// not be read, the cause (e.g. secrets.ErrAccessDenied).
func (e *CredentialError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.TokenError, e.Err}
	}
	return []error{e.TokenError}
}

// ErrTransient marks failures a later attempt may not see: timeouts, 5xx,
// 429. Acquisitions retry them within their deadline before giving up.
var ErrTransient = errors.New("downstream: token endpoint temporarily unavailable")

type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return ErrTransient.Error() + ": " + e.err.Error() }
func (e *transientError) Unwrap() []error {
	return []error{ErrTransient, e.err}
}

// credentialFixes name the fix for each AADSTS code that means the app's
// own credential is wrong.
var credentialFixes = map[int]string{
	7000215: "the client secret is wrong: use the secret's Value (not its Secret ID), wherever the app reads it (a setting, the Key Vault secret)",
	7000222: "the client secret has expired: create a new one and store it where the app reads it (Key Vault), or move to the managed identity credential",
	7000218: "no credential was sent: configure a client secret, a certificate, or the managed identity federated credential",
	700016:  "the app id is not registered in this tenant: check the client id the app is configured with (Config.ClientID) and the tenant, or have an admin of the tenant consent to the app",
	700027:  "the certificate is not registered on the app: upload its public key to the app registration",
	700024:  "the client assertion is malformed or expired: check the clock and the certificate",
	700211:  "the federated credential's issuer does not match the managed identity's token issuer",
	700212:  "the federated credential's audience must be api://AzureADTokenExchange",
	700213:  "the federated credential's subject must be the managed identity's object (principal) id",
}

func assertionReason(code int) string {
	switch code {
	case 500133:
		return "it has expired"
	case 500131:
		return "it was issued for another API"
	case 7000114:
		return "it is an app-only token, not a user's"
	case 50020:
		return "the user is not in the authority's tenant"
	}
	return "its signature or claims are invalid"
}

// classify turns an MSAL error into the typed errors above.
func classify(ctx context.Context, err error, scopes []string) error {
	var ce msalerrors.CallErr
	var own *CredentialError
	if errors.As(err, &own) {
		return own
	}
	if !errors.As(err, &ce) || ce.Resp == nil {
		// No answer at all (connection refused, timeout): transient, unless
		// the caller's own context ended.
		if ctx.Err() != nil {
			return err
		}
		return &transientError{err: err}
	}
	status := ce.Resp.StatusCode
	var body struct {
		Error         string `json:"error"`
		Description   string `json:"error_description"`
		Codes         []int  `json:"error_codes"`
		Suberror      string `json:"suberror"`
		Claims        string `json:"claims"`
		CorrelationID string `json:"correlation_id"`
	}
	if ce.Resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
		_ = json.Unmarshal(b, &body)
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return &transientError{err: fmt.Errorf("HTTP %d %s", status, body.Error), retryAfter: retryAfter(ce.Resp.Header.Get("Retry-After"))}
	}
	te := &TokenError{Status: status, OAuthError: body.Error, Suberror: body.Suberror, Claims: body.Claims,
		CorrelationID: body.CorrelationID, Description: body.Description}
	if len(body.Codes) > 0 {
		te.Code = body.Codes[0]
	}
	switch {
	case te.Code == 65001 || body.Suberror == "consent_required" || body.Error == "consent_required":
		return &ConsentRequiredError{TokenError: te, Scopes: scopes}
	case body.Error == "interaction_required" || slices.Contains([]int{50076, 50079, 50158, 53003, 50005}, te.Code):
		return &InteractionRequiredError{TokenError: te, Scopes: scopes}
	case slices.Contains([]int{50013, 500131, 500133, 7000114, 50020}, te.Code):
		return &InvalidAssertionError{TokenError: te}
	}
	if fix, ok := credentialFixes[te.Code]; ok {
		return &CredentialError{TokenError: te, Fix: fix}
	}
	return te
}

// retryAfter reads Retry-After in seconds (the form Entra sends); 0 if absent.
func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
