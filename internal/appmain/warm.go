package appmain

import (
	"context"
	"log/slog"
	"time"
)

// WarmTimeout bounds a warm-up; what is not fetched by then is fetched on
// first use, as without a warm-up.
const WarmTimeout = 30 * time.Second

// Warm runs warm (an app's Warm method: it fetches the authority's
// metadata and keys, tokens, secrets) in the background, so the process
// answers readiness at once and its first request finds them fetched. A
// failure is logged, never fatal: the first use fetches again. The
// returned channel is closed when the warm-up ended.
func Warm(ctx context.Context, log *slog.Logger, warm func(context.Context) error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(ctx, WarmTimeout)
		defer cancel()
		start := time.Now()
		if err := warm(ctx); err != nil {
			log.Warn("warm-up failed; the first request fetches what it needs", "error", err.Error())
			return
		}
		log.Info("warm-up done", "duration_ms", time.Since(start).Milliseconds())
	}()
	return done
}
