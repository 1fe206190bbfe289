package entraauth

import (
	"errors"
	"net/http"
)

// ErrUnavailable means tokens cannot be checked now: the authority's
// metadata or keys could not be fetched. Requests fail closed with 503.
var ErrUnavailable = errors.New("entraauth: token validation unavailable")

// Error is a rejected request: a token that is not valid (401,
// invalid_token) or that does not grant what the endpoint requires (403,
// insufficient_scope). Description is safe to show the caller: it never
// contains key material or internal errors.
type Error struct {
	Status      int
	Code        string // RFC 6750 error code; "" when no token was sent at all
	Description string
	// Scope lists the scopes or roles that would have been enough (403).
	Scope   string
	expired bool
}

// Error is the description, prefixed with the package name.
func (e *Error) Error() string { return "entraauth: " + e.Description }

// Expired reports whether the token was rejected only for having expired.
func (e *Error) Expired() bool { return e.expired }

func invalid(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}

func forbidden(desc, scope string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Description: desc, Scope: scope}
}
