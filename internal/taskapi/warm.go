package taskapi

import (
	"context"
	"errors"
	"sync"
)

// Warm fetches, at once and together, what the first requests would
// otherwise wait for in series: the authority's metadata and keys for the
// validator, the app's credential (managed identity token, Key Vault
// secret), its client-credentials token for the Audit Service, and the
// On-Behalf-Of clients of the allowed tenants with their authority
// resolved. On-Behalf-Of tokens need a user's token: a user's first create
// still asks for one. A failure is returned, not fatal: the first use
// fetches again.
// appmain.Warm runs it in the background at start.
func (a *App) Warm(ctx context.Context) error {
	// The three at once: the client-credentials token waits for a token
	// round trip (hundreds of milliseconds against a slow authority),
	// while the tenants' authorities resolve in a few; after the token,
	// they were not resolved when a cold start's first create asked for its
	// On-Behalf-Of token, which then resolved the authority itself on a new
	// connection (make bench-load's cold start: docs/performance.md).
	var wg sync.WaitGroup
	var errValidator, errAppToken, errTenants error
	wg.Go(func() { errValidator = a.validator.Warm(ctx) })
	wg.Go(func() { errAppToken = a.tokens.Warm(ctx, []string{a.cfg.Audit.Scope}) })
	wg.Go(func() { errTenants = a.tokens.WarmTenants(ctx, a.warmTenants()...) })
	wg.Wait()
	return errors.Join(errValidator, errAppToken, errTenants)
}

// warmTenants are the tenants whose users the Task API serves: the allowed
// ones, or only the home tenant when any tenant is.
func (a *App) warmTenants() []string {
	if a.cfg.AllowAnyTenant || len(a.cfg.TenantIDs) == 0 {
		return []string{a.cfg.HomeTenantID}
	}
	return a.cfg.TenantIDs
}
