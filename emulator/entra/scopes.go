package entra

import (
	"slices"
	"strings"
)

// oidcScopes are the OpenID Connect scopes MSAL adds to every request.
var oidcScopes = []string{"openid", "profile", "offline_access", "email"}

// graphAppID is Microsoft Graph's app id: scopes without a resource prefix
// ("User.Read") are Graph's, as in Entra.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// scopeRequest is a token request's scope parameter, resolved: the OIDC
// scopes, and the one resource the rest name.
type scopeRequest struct {
	oidc       []string
	resource   *Application // nil when only OIDC scopes were asked
	resourceAs string       // the resource as the request named it (client id or URI)
	values     []string     // scope values on the resource, without prefix
	isDefault  bool         // {resource}/.default
	raw        string
}

func (q scopeRequest) has(oidc string) bool { return slices.Contains(q.oidc, oidc) }

// parseScopes resolves a scope parameter. Every resource scope must name the
// same resource; .default cannot be combined with named scopes.
func (s *Server) parseScopes(raw string) (scopeRequest, *stsError) {
	q := scopeRequest{raw: raw}
	for _, sc := range strings.Fields(raw) {
		if slices.Contains(oidcScopes, strings.ToLower(sc)) {
			q.oidc = append(q.oidc, strings.ToLower(sc))
			continue
		}
		resourceAs, value := graphAppID, sc
		if i := strings.LastIndex(sc, "/"); i >= 0 {
			resourceAs, value = sc[:i], sc[i+1:]
		}
		if resourceAs == "" || value == "" {
			return q, errInvalidScope(raw, "A scope is a resource identifier, a slash and a scope value.")
		}
		res := s.dir.resourceByIdentifier(resourceAs)
		if res == nil {
			return q, errInvalidScope(raw, "The resource '"+resourceAs+"' is not an application in the emulator's directory (Microsoft Graph and other Microsoft APIs are not emulated).")
		}
		if q.resource != nil && q.resource != res {
			return q, errInvalidScope(raw, "AADSTS28000: scopes for more than one resource were requested; request tokens for one resource at a time.")
		}
		q.resource, q.resourceAs = res, resourceAs
		if value == ".default" {
			q.isDefault = true
			continue
		}
		if res.scope(value) == nil {
			return q, errInvalidScope(raw, "The application '"+res.DisplayName+"' exposes no scope named '"+value+"'.")
		}
		if !slices.Contains(q.values, value) {
			q.values = append(q.values, value)
		}
	}
	if q.isDefault && len(q.values) > 0 {
		return q, errInvalidScope(raw, "The .default scope can't be combined with resource-specific scopes.")
	}
	return q, nil
}

// grantedScopeString is the response's "scope": the requested resource
// scopes as asked (MSAL refuses a response that omits one), then the OIDC ones.
func (q scopeRequest) grantedScopeString(granted []string) string {
	var out []string
	if q.isDefault {
		out = append(out, q.resourceAs+"/.default")
	}
	for _, v := range granted {
		out = append(out, q.resourceAs+"/"+v)
	}
	for _, o := range q.oidc {
		if o != "offline_access" {
			out = append(out, o)
		}
	}
	if q.has("offline_access") {
		out = append(out, "offline_access")
	}
	return strings.Join(out, " ")
}
