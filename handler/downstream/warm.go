package downstream

import (
	"context"
	"errors"
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
