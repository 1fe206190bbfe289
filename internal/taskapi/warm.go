package taskapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	var errValidator, errAppToken, errTenants, errConns error
	wg.Go(func() { errValidator = a.validator.Warm(ctx) })
	wg.Go(func() { errAppToken = a.tokens.Warm(ctx, []string{a.cfg.Audit.Scope}) })
	wg.Go(func() { errTenants = a.tokens.WarmTenants(ctx, a.warmTenants()...) })
	wg.Go(func() { errConns = a.warmConnections(ctx) })
	wg.Wait()
	return errors.Join(errValidator, errAppToken, errTenants, errConns)
}

// warmTenants are the tenants whose users the Task API serves: the allowed
// ones, or only the home tenant when any tenant is.
func (a *App) warmTenants() []string {
	if a.cfg.AllowAnyTenant || len(a.cfg.TenantIDs) == 0 {
		return []string{a.cfg.HomeTenantID}
	}
	return a.cfg.TenantIDs
}

// warmConnections opens the connections a create's calls will use, to the
// Notification and Audit Services, so the first create does not wait for
// a TCP (and on Azure, TLS) handshake: a HEAD of each path the create
// posts to. The Functions host answers it 404 itself (the route declares
// POST only), so no function runs; any answer leaves the connection open
// for reuse. Only a failure to connect is an error.
func (a *App) warmConnections(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, url := range []string{a.cfg.Notification.URL + notifyPath, a.cfg.Audit.URL + auditPath} {
		wg.Go(func() {
			if err := a.head(ctx, url); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// head sends a HEAD request to url and reads its (empty) answer.
func (a *App) head(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("warm connection: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDownstreamBody))
	return resp.Body.Close()
}
