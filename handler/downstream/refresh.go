package downstream

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/handoff-dev/handoff/handler/internal/guid"
)

// DefaultForcedRefreshInterval spaces the forced refreshes of one token
// kind (app or On-Behalf-Of) at one tenant.
const DefaultForcedRefreshInterval = 5 * time.Second

// ErrRefreshLimited: a downstream API refused a token as invalid, but a
// forced refresh of that kind of token at that tenant already ran within
// ForcedRefreshInterval, so no new token was requested. A downstream API
// that refuses every token (misconfigured, say) cannot turn each call into
// a token request.
var ErrRefreshLimited = errors.New("downstream: a token was refused again within ForcedRefreshInterval; no new token requested")

// invalidTokenRE finds error="invalid_token" (quoted or not) among a
// Bearer challenge's parameters.
var invalidTokenRE = regexp.MustCompile(`(?i)(?:^|[\s,])error\s*=\s*(?:"invalid_token"|invalid_token)(?:$|[\s,])`)

// InvalidTokenChallenge reports whether resp refuses the token itself: a
// 401 whose WWW-Authenticate is a Bearer challenge with
// error="invalid_token" (RFC 6750), as an API answers a token signed by a
// key it no longer trusts. It is the one refusal a new token can fix;
// others (insufficient_scope, no challenge) are not.
func InvalidTokenChallenge(resp *http.Response) bool {
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "Bearer") && invalidTokenRE.MatchString(params) {
			return true
		}
	}
	return false
}

// RefreshAppToken is [Client.AppToken] after a downstream API refused
// rejected with [InvalidTokenChallenge]: it drops the cached app tokens and
// acquires a new one. When another caller has replaced the token already,
// that one is returned with no new request. Forced refreshes run at most
// once per ForcedRefreshInterval at the home tenant; beyond that it
// returns [ErrRefreshLimited].
func (c *Client) RefreshAppToken(ctx context.Context, rejected Token, scopes ...string) (Token, error) {
	get := func(ctx context.Context) (Token, error) { return c.AppToken(ctx, scopes...) }
	return c.forcedRefresh(ctx, "app", c.cfg.HomeTenantID, rejected, get, c.dropAppTokens)
}

// RefreshOnBehalfOf is [Client.OnBehalfOf] after a downstream API refused
// rejected with [InvalidTokenChallenge]: it drops the On-Behalf-Of tokens
// cached for the user's tenant and acquires a new one, as
// [Client.RefreshAppToken] does, at most once per ForcedRefreshInterval per
// tenant.
func (c *Client) RefreshOnBehalfOf(ctx context.Context, assertion, tenantID string, rejected Token, scopes ...string) (Token, error) {
	if assertion == "" || !guid.Valid(tenantID) {
		return Token{}, ErrNotDelegated
	}
	get := func(ctx context.Context) (Token, error) { return c.OnBehalfOf(ctx, assertion, tenantID, scopes...) }
	drop := func(context.Context) error { c.dropTenantTokens(tenantID); return nil }
	return c.forcedRefresh(ctx, "obo", tenantID, rejected, get, drop)
}

// refreshGate serializes the forced refreshes of one token kind at one
// tenant and spaces them.
type refreshGate struct {
	held    chan struct{} // a one-slot semaphore: callers wait with their ctx
	limiter *rate.Limiter // read with the client's clock
}

func (c *Client) gate(kind, tenant string) *refreshGate {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	key := kind + " " + tenant
	if g, ok := c.gates.get(key, time.Time{}); ok {
		return g
	}
	g := &refreshGate{held: make(chan struct{}, 1), limiter: rate.NewLimiter(rate.Every(c.cfg.ForcedRefreshInterval), 1)}
	c.gates.put(key, g, time.Time{})
	return g
}

// forcedRefresh runs one caller at a time per gate: a caller whose token
// was replaced meanwhile (by the caller before it) gets the new one; else,
// if the gate's bucket allows, the cached tokens are dropped and a new one
// acquired.
func (c *Client) forcedRefresh(ctx context.Context, kind, tenant string, rejected Token,
	get func(context.Context) (Token, error), drop func(context.Context) error) (Token, error) {
	g := c.gate(kind, tenant)
	select {
	case g.held <- struct{}{}:
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
	defer func() { <-g.held }()
	tok, err := get(ctx)
	if err != nil || tok.AccessToken != rejected.AccessToken {
		return tok, err
	}
	if !g.limiter.AllowN(c.cfg.Now(), 1) {
		c.mu.Lock()
		c.stats.RefreshesLimited++
		c.mu.Unlock()
		c.log.WarnContext(ctx, "downstream: a token was refused as invalid again; not requesting another yet", "kind", kind, "tenant", tenant,
			"interval", c.cfg.ForcedRefreshInterval.String())
		return Token{}, ErrRefreshLimited
	}
	if err := drop(ctx); err != nil {
		return Token{}, err
	}
	c.mu.Lock()
	c.stats.ForcedRefreshes++
	c.mu.Unlock()
	c.log.InfoContext(ctx, "downstream: a downstream API refused a cached token as invalid; requesting a new one", "kind", kind, "tenant", tenant)
	return get(ctx)
}

// dropAppTokens replaces the home tenant's MSAL client by a new one, whose
// cache is empty. (MSAL Go cannot evict one token, and has no force-refresh
// option for client credentials: WithClaims bypasses the cache but sends
// Entra a claims challenge.)
func (c *Client) dropAppTokens(ctx context.Context) error {
	cred, version, err := c.current(ctx)
	if err != nil {
		return err
	}
	app, err := c.newMSAL(c.cfg.HomeTenantID, cred)
	if err != nil {
		return &CredentialError{TokenError: &TokenError{}, Fix: err.Error(), Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version == c.version {
		c.app, c.appTokens = app, nil
	} // else the credential changed meanwhile, and every client was rebuilt
	return nil
}

// dropTenantTokens forgets the tenant's On-Behalf-Of results and its MSAL
// client (and so that client's cache): a token one downstream API refuses
// as invalid (a key rotation, say) is likely not the only one.
func (c *Client) dropTenantTokens(tenantID string) {
	c.obo.deletePrefix(tenantID + " ")
	c.tenants.delete(tenantID)
}
