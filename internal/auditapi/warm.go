package auditapi

import "context"

// Warm fetches the authority's metadata and keys for the validator now, so
// the first request does not wait for them. A failure is returned, not
// fatal: the first request fetches again. appmain.Warm runs it in the
// background at start.
func (a *App) Warm(ctx context.Context) error { return a.validator.Warm(ctx) }
