package entraauth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/handler/problem"
)

// Protect returns a handler that authenticates the request's bearer token,
// checks every requirement, and calls next with the [Identity] in the
// request context ([FromContext]). Rejections are answered as RFC 6750 says
// (WWW-Authenticate) with an RFC 9457 problem body, and logged with their
// reason; the token never is.
//
// Validation runs in a span, entraauth.validate (see [ScopeName]), whose
// attributes say how it ended (handoff.auth.outcome: valid, rejected,
// forbidden or unavailable) and, for a valid token, its tenant and caller
// app; never the token or its claims beyond those.
func (v *Validator) Protect(next http.Handler, reqs ...Requirement) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := v.tracer.Start(r.Context(), "entraauth.validate", validateSpanKind)
		id, err := v.authenticate(ctx, r, reqs)
		if span.IsRecording() {
			endValidateSpan(span, id, err)
		}
		span.End()
		if err != nil {
			v.reject(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

func (v *Validator) authenticate(ctx context.Context, r *http.Request, reqs []Requirement) (*Identity, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	id, err := v.Validate(ctx, raw)
	if err != nil {
		return nil, err
	}
	for _, req := range reqs {
		if e := req.check(id); e != nil {
			v.log.InfoContext(ctx, "entraauth: request forbidden", "reason", e.Description, "oid", id.ObjectID, "tid", id.TenantID, "app", id.CallerAppID, "path", r.URL.Path)
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
		v.log.WarnContext(r.Context(), "entraauth: token validation unavailable", "path", r.URL.Path, "error", err.Error())
		w.Header().Set("Retry-After", "5")
		problem.Error(w, http.StatusServiceUnavailable, "token validation is temporarily unavailable")
		return
	}
	if e.Status != http.StatusForbidden {
		v.log.InfoContext(r.Context(), "entraauth: token rejected", "reason", e.Description, "path", r.URL.Path)
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

// ScopeName is the OpenTelemetry instrumentation scope of this package's spans.
const ScopeName = "github.com/handoff-dev/handoff/handler/entraauth"

var validateSpanKind = trace.WithSpanKind(trace.SpanKindInternal)

// Attributes of the entraauth.validate span.
const (
	attrAuthOutcome = attribute.Key("handoff.auth.outcome")
	attrTenant      = attribute.Key("handoff.tenant.id")
	attrCallerApp   = attribute.Key("handoff.caller_app.id")
)

// endValidateSpan records how a validation ended: the outcome, and for a
// token that validated, its tenant and caller app (never the token).
func endValidateSpan(span trace.Span, id *Identity, err error) {
	var e *Error
	switch {
	case err == nil:
		span.SetAttributes(attrAuthOutcome.String("valid"), attrTenant.String(id.TenantID), attrCallerApp.String(id.CallerAppID))
	case !errors.As(err, &e):
		span.SetAttributes(attrAuthOutcome.String("unavailable"))
		span.SetStatus(codes.Error, "token validation unavailable")
	case e.Status == http.StatusForbidden:
		span.SetAttributes(attrAuthOutcome.String("forbidden"))
	default:
		span.SetAttributes(attrAuthOutcome.String("rejected"))
	}
}
