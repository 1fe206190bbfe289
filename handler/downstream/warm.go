package downstream

import (
	"context"
	"errors"
	"fmt"
)

// Warm does now what the first token request would otherwise do in series:
// it reads the credential (for a Key Vault secret: the managed identity's
// token, then the secret) and, for each scope set in appScopes, gets the
// app's own token (client credentials, which also resolves the home
// tenant's authority for MSAL). A process calls it at start, in the
// background; ctx bounds it.
//
// A failure is returned for the caller to log and is never fatal: nothing
// is cached from it, so the first use tries again, as without Warm.
// On-Behalf-Of tokens cannot be warmed: they need a user's token.
func (c *Client) Warm(ctx context.Context, appScopes ...[]string) error {
	if len(appScopes) == 0 {
		_, _, err := c.current(ctx)
		return err
	}
	var errs []error
	for _, scopes := range appScopes {
		if _, err := c.AppToken(ctx, scopes...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WarmTenants creates the On-Behalf-Of clients of tenantIDs (at most
// MaxTenants of them) and has MSAL resolve each tenant's authority (a GET
// of its OpenID metadata), which the first On-Behalf-Of request of a
// tenant would otherwise do before its token request. A failure is
// returned, not fatal: the first request resolves it again.
func (c *Client) WarmTenants(ctx context.Context, tenantIDs ...string) error {
	var errs []error
	for _, tid := range tenantIDs[:min(len(tenantIDs), c.cfg.MaxTenants)] {
		cc, err := c.tenantClient(ctx, tid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// AuthCodeURL resolves the authority's endpoints into the client's
		// cache, the one its token requests read; the URL is not used.
		if _, err := cc.AuthCodeURL(ctx, c.cfg.ClientID, "http://localhost", []string{"openid"}); err != nil {
			errs = append(errs, fmt.Errorf("downstream: tenant %s: %w", tid, err))
		}
	}
	return errors.Join(errs...)
}
