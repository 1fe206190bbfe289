package entraauth

import (
	"context"
	"time"
)

// Warm fetches the authority's metadata and keys now, as the first
// [Validator.Validate] would, so that a process can do it at start, in the
// background, and its first request does not wait for them. Concurrent
// Validate calls share the same fetch.
//
// A failure is returned for the caller to log and is never fatal: it does
// not hold back the next attempt, so the first Validate after a failed
// warm-up tries the authority again at once, as if Warm had not run (a
// failure of Validate itself still spaces the attempts that follow it).
func (v *Validator) Warm(ctx context.Context) error {
	_, err := v.metadata(ctx)
	if err != nil {
		v.mu.Lock()
		if v.ready == nil && !v.discovering {
			v.lastTry = time.Time{}
		}
		v.mu.Unlock()
	}
	return err
}
