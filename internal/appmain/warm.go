package appmain

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// EnvWarmUp turns the warm-up off with "off" ("on", the default, or unset:
// on). Off, every app fetches lazily on first use, as before the warm-up
// existed: for tests of what a first request does when the authority
// fails, and for `make bench-load`'s comparison.
const EnvWarmUp = "WARM_UP"

// warmUpOn reads EnvWarmUp; another value is a configuration error.
func warmUpOn() (bool, error) {
	switch v := os.Getenv(EnvWarmUp); v {
	case "", "on":
		return true, nil
	case "off":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: want on or off", EnvWarmUp, v)
	}
}

// WarmTimeout bounds a warm-up; what is not fetched by then is fetched on
// first use, as without a warm-up.
const WarmTimeout = 30 * time.Second

// Warm runs warm (an app's Warm method: it fetches the authority's
// metadata and keys, tokens, secrets) in the background, so the process
// answers readiness at once and its first request finds them fetched. A
// failure is logged, never fatal: the first use fetches again. The
// returned channel is closed when the warm-up ended. With WARM_UP=off it
// does nothing (Main refuses another value than on or off).
func Warm(ctx context.Context, log *slog.Logger, warm func(context.Context) error) <-chan struct{} {
	done := make(chan struct{})
	if on, _ := warmUpOn(); !on {
		log.Info("warm-up off (" + EnvWarmUp + "=off): the first requests fetch what they need")
		close(done)
		return done
	}
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
