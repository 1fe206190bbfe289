package entraauth

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Identity is what a validated access token proves.
type Identity struct {
	ObjectID          string // oid: the user, or the calling app's service principal
	TenantID          string // tid
	Subject           string // sub: pairwise per API
	Name              string // users only
	PreferredUsername string // users only (upn on v1 tokens)
	Scopes            []string
	Roles             []string
	CallerAppID       string // azp (v2) or appid (v1)
	AppOnly           bool   // an application acting as itself, no user
	Version           string // "2.0" or "1.0"
	ExpiresAt         time.Time
	// Token is the raw access token, which On-Behalf-Of exchanges. Never log
	// it: String, LogValue and JSON leave it out.
	Token string `json:"-"`
}

// HasScope reports whether the token grants the delegated scope.
func (id *Identity) HasScope(scope string) bool { return slices.Contains(id.Scopes, scope) }

// HasRole reports whether the token carries the role.
func (id *Identity) HasRole(role string) bool { return slices.Contains(id.Roles, role) }

// String names the identity without its token.
func (id *Identity) String() string {
	return "Identity{oid=" + id.ObjectID + " tid=" + id.TenantID + " app=" + id.CallerAppID + "}"
}

// LogValue keeps the token out of structured logs.
func (id *Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("oid", id.ObjectID), slog.String("tid", id.TenantID),
		slog.String("app", id.CallerAppID), slog.Bool("app_only", id.AppOnly))
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity [Validator.Protect] put in the request's context.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok
}
