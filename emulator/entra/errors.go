package entra

import (
	"fmt"
	"net/http"
	"time"
)

// stsError is an Entra token endpoint error: an OAuth error code, an AADSTS
// number and a description, answered as Entra's JSON body.
type stsError struct {
	status   int
	oauth    string // error
	code     int    // AADSTS number
	desc     string // without the "AADSTSnnnn: " prefix
	suberror string
	claims   string
}

func (e *stsError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.code, e.desc) }

func newSTSError(status int, oauth string, code int, format string, args ...any) *stsError {
	return &stsError{status: status, oauth: oauth, code: code, desc: fmt.Sprintf(format, args...)}
}

// The errors the emulator produces, named for their AADSTS numbers. Each
// takes the values its real counterpart names.
func errInvalidSecret(clientID string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)
}

func errMissingCredential() *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 7000218,
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errClientAssertionSignature(clientID string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 700027,
		"Client assertion failed signature validation. (Key was not found or signature is invalid for app '%s'.)", clientID)
}

func errClientAssertionInvalid(reason string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 700024,
		"Client assertion is not within its valid time range or is otherwise invalid: %s.", reason)
}

// Federated credential mismatches name what differs, as Entra's do.
func errFederatedIssuer(clientID, issuer string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 700211,
		"No matching federated identity record found for presented assertion issuer '%s' on app '%s'. Check the issuer of your federated identity credentials.", issuer, clientID)
}

func errFederatedAudience(clientID, audience string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 700212,
		"No matching federated identity record found for presented assertion audience '%s' on app '%s'. Check the audiences of your federated identity credentials.", audience, clientID)
}

func errFederatedSubject(clientID, issuer, subject string) *stsError {
	return newSTSError(http.StatusUnauthorized, "invalid_client", 700213,
		"No matching federated identity record found for presented assertion subject '%s' and issuer '%s' on app '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.", subject, issuer, clientID)
}

func errAssertionSignature() *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 50013,
		"Assertion failed signature validation. [Reason - The key was not found or the signature does not match.]")
}

func errAssertionMalformed(reason string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 50013,
		"Assertion is invalid: %s.", reason)
}

func errAssertionAudience(clientID string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 500131,
		"Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was not the client '%s' or one of its identifier URIs.", clientID)
}

func errAssertionExpired(exp, now time.Time) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 500133,
		"Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.",
		now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
}

func errOBOAppOnly(clientID string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 7000114,
		"Application '%s' is not allowed to make application on-behalf-of calls: the assertion is an app-only token.", clientID)
}

func errConsentRequired(clientID, clientName, resourceID string) *stsError {
	e := newSTSError(http.StatusBadRequest, "invalid_grant", 65001,
		"The user or administrator has not consented to use the application with ID '%s' named '%s' for resource '%s'. Send an interactive authorization request for this user and resource.", clientID, clientName, resourceID)
	e.suberror = "consent_required"
	return e
}

func errInvalidScope(scope, why string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_scope", 70011,
		"The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid: '%s'. %s", scope, why)
}

func errClientCredentialsScope(scope string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_scope", 1002012,
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
}

func errAppNotInTenant(clientID, tenant string) *stsError {
	return newSTSError(http.StatusBadRequest, "unauthorized_client", 700016,
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, tenant)
}

func errResourceNotFound(resource, tenant string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_resource", 500011,
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", resource, tenant)
}

func errUserNotAssigned(appID, appName string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 50105,
		"Your administrator has configured the application %s ('%s') to block users unless they are specifically granted ('assigned') access to the application.", appName, appID)
}

func errAppNotAssigned(resourceName string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 501051,
		"Application is not assigned to a role for the application '%s'.", resourceName)
}

func errPKCEMismatch() *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 501481,
		"The Code_Verifier does not match the code_challenge supplied in the authorization request.")
}

func errCrossOriginNotSPA() *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_request", 9002326,
		"Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: the redirect URI is not registered as a SPA redirect URI.")
}

func errSPANeedsOrigin() *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_request", 9002327,
		"Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.")
}

func errCodeRedeemed() *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 54005,
		"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
}

func errCodeInvalid(why string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 70008,
		"The provided authorization code or refresh token has expired or is invalid: %s.", why)
}

func errTenantNotFound(tenant string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_tenant", 90002,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)
}

func errTenantRequired(flow string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_request", 700044,
		"The %s flow needs a tenant-specific authority (a tenant id or domain), not 'common' or 'organizations'.", flow)
}

func errInvalidGrant(code int, format string, args ...any) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", code, format, args...)
}

func errInvalidRequest(code int, format string, args ...any) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_request", code, format, args...)
}

func errUnsupportedGrant(grant string) *stsError {
	return newSTSError(http.StatusBadRequest, "unsupported_grant_type", 70003,
		"The app requested an unsupported grant type '%s'.", grant)
}

func errTemporarilyUnavailable() *stsError {
	return newSTSError(http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
		"A transient error has occurred. Please try again. (Injected by the emulator's failure control.)")
}

func errUserNotInTenant(oid, tenant string) *stsError {
	return newSTSError(http.StatusBadRequest, "invalid_grant", 50020,
		"User account '%s' does not exist in tenant '%s' and cannot access the application in that tenant. Use the user's own tenant as the authority.", oid, tenant)
}

func errInternal(err error) *stsError {
	return newSTSError(http.StatusInternalServerError, "server_error", 90010, "The emulator failed to issue the token: %v", err)
}
