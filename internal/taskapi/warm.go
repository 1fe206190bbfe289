package taskapi

import (
	"context"
	"errors"
	"sync"
)

// Warm fetches, at once and together, what the first requests would
// otherwise wait for in series: the authority's metadata and keys for the
// validator, the app's credential (managed identity token, Key Vault
// secret) and its client-credentials token for the Audit Service. On-Behalf-Of
// tokens need a user's token: the first create still asks for one. A
// failure is returned, not fatal: the first use fetches again.
// appmain.Warm runs it in the background at start.
func (a *App) Warm(ctx context.Context) error {
	var wg sync.WaitGroup
	var errValidator, errTokens error
	wg.Go(func() { errValidator = a.validator.Warm(ctx) })
	wg.Go(func() { errTokens = a.tokens.Warm(ctx, []string{a.cfg.Audit.Scope}) })
	wg.Wait()
	return errors.Join(errValidator, errTokens)
}
