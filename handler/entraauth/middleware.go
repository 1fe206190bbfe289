package entraauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/handoff-dev/handoff/handler/problem"
)

// Protect returns a handler that authenticates the request's bearer token,
// checks every requirement, and calls next with the [Identity] in the
// request context ([FromContext]). Rejections are answered as RFC 6750 says
// (WWW-Authenticate) with an RFC 9457 problem body, and logged with their
// reason; the token never is.
func (v *Validator) Protect(next http.Handler, reqs ...Requirement) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.authenticate(r, reqs)
		if err != nil {
			v.reject(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

func (v *Validator) authenticate(r *http.Request, reqs []Requirement) (*Identity, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	id, err := v.Validate(r.Context(), raw)
	if err != nil {
		return nil, err
	}
	for _, req := range reqs {
		if e := req.check(id); e != nil {
			v.log.Info("entraauth: request forbidden", "reason", e.Description, "oid", id.ObjectID, "tid", id.TenantID, "app", id.CallerAppID, "path", r.URL.Path)
			return nil, e
		}
	}
	return id, nil
}

// BearerToken extracts the token per RFC 6750 section 2.1: exactly one
// Authorization header, scheme Bearer in any case. A token in the query
// string is refused rather than ignored, so the mistake is seen; form
// bodies are never read for one.
func BearerToken(r *http.Request) (string, error) {
	if r.URL.Query().Has("access_token") {
		return "", invalid("tokens in the query string are not accepted; use the Authorization header")
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", &Error{Status: http.StatusUnauthorized, Description: "no bearer token"}
	case 1:
	default:
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "more than one Authorization header"}
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Status: http.StatusUnauthorized, Code: "invalid_request", Description: "the Authorization header is not a Bearer token"}
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", invalid("the bearer token is empty or malformed")
	}
	if len(token) > MaxTokenSize {
		return "", invalid("the token is larger than 16384 bytes")
	}
	return token, nil
}

func (v *Validator) reject(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		// The authority is unreachable: fail closed, and say it is not the caller's fault.
		v.log.Warn("entraauth: token validation unavailable", "path", r.URL.Path, "error", err.Error())
		w.Header().Set("Retry-After", "5")
		problem.Error(w, http.StatusServiceUnavailable, "token validation is temporarily unavailable")
		return
	}
	if e.Status != http.StatusForbidden {
		v.log.Info("entraauth: token rejected", "reason", e.Description, "path", r.URL.Path)
	}
	challenge := "Bearer"
	if e.Code != "" {
		challenge += ` error="` + e.Code + `", error_description="` + strings.ReplaceAll(e.Description, `"`, `'`) + `"`
	}
	if e.Scope != "" {
		challenge += `, scope="` + e.Scope + `"`
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	d := problem.Details{Status: e.Status, Detail: e.Description}
	if e.Code != "" {
		d.Extra = map[string]any{"error": e.Code}
	}
	problem.Write(w, d)
}
