package entraauth

import (
	"slices"
	"strings"
)

// A Requirement is what an endpoint demands of a valid token. A delegated
// token never satisfies an app-only requirement and vice versa, whatever
// roles it carries.
type Requirement interface {
	check(*Identity) *Error
}

type requirementFunc func(*Identity) *Error

func (f requirementFunc) check(id *Identity) *Error { return f(id) }

// Scopes requires a delegated (user) token granting at least one of scopes,
// as Microsoft.Identity.Web's RequiredScope.
func Scopes(anyOf ...string) Requirement {
	return requirementFunc(func(id *Identity) *Error {
		if id.AppOnly {
			return forbidden("this endpoint needs a user's delegated token, not an app-only token", strings.Join(anyOf, " "))
		}
		if !slices.ContainsFunc(anyOf, id.HasScope) {
			return forbidden("the token lacks a required scope", strings.Join(anyOf, " "))
		}
		return nil
	})
}

// UserRoles requires a delegated token whose user holds at least one of roles.
func UserRoles(anyOf ...string) Requirement {
	return requirementFunc(func(id *Identity) *Error {
		if id.AppOnly {
			return forbidden("this endpoint needs a user's delegated token, not an app-only token", strings.Join(anyOf, " "))
		}
		if !slices.ContainsFunc(anyOf, id.HasRole) {
			return forbidden("the user holds none of the required roles", strings.Join(anyOf, " "))
		}
		return nil
	})
}

// AppPermissions requires an app-only token granted at least one of roles
// (application permissions).
func AppPermissions(anyOf ...string) Requirement {
	return requirementFunc(func(id *Identity) *Error {
		if !id.AppOnly {
			return forbidden("this endpoint needs an app-only token, not a user's delegated token", strings.Join(anyOf, " "))
		}
		if !slices.ContainsFunc(anyOf, id.HasRole) {
			return forbidden("the application lacks a required permission", strings.Join(anyOf, " "))
		}
		return nil
	})
}

// CallerApps requires the token to be issued to one of the given client
// apps (azp, or appid on v1 tokens).
func CallerApps(appIDs ...string) Requirement {
	return requirementFunc(func(id *Identity) *Error {
		if !slices.Contains(appIDs, id.CallerAppID) {
			return forbidden("the calling application is not allowed", "")
		}
		return nil
	})
}

// Delegated requires a user's token, with any scope.
func Delegated() Requirement {
	return requirementFunc(func(id *Identity) *Error {
		if id.AppOnly {
			return forbidden("this endpoint needs a user's delegated token, not an app-only token", "")
		}
		return nil
	})
}
