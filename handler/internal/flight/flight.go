// Package flight is the library's one "one fetch in flight, the rest wait":
// golang.org/x/sync/singleflight, with the call detached from the caller
// that started it and bounded by a timeout of its own.
//
// The validator's discovery, its key refreshes, the token acquisitions and
// the reads of a rotating credential all need the same thing: concurrent
// callers share one request, the request outlives a caller that hangs up
// (so one impatient caller cannot fail it for the others), and each caller
// waits at most until its own context ends.
package flight

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Group runs at most one call per key at a time. The zero Group is not
// ready: set Timeout.
type Group[T any] struct {
	// Base is the context calls run under (a validator's lifetime, say);
	// nil means the starting caller's, without its cancellation.
	Base context.Context
	// Timeout bounds each call, whoever waits for it.
	Timeout time.Duration

	g       singleflight.Group
	waiting atomic.Int32 // callers waiting, for tests
}

// Do runs fn once for all the concurrent callers of key and returns its
// result to each, or ctx.Err() to a caller whose ctx ends first (the call
// goes on for the others). A panic in fn is returned as an error, not
// raised in a goroutine no caller can recover.
func (g *Group[T]) Do(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		// A caller already gone starts nothing; deciding here, not in the
		// select below, keeps its answer from depending on which channel
		// the select happens to pick when both are ready.
		var zero T
		return zero, err
	}
	ch := g.g.DoChan(key, func() (v any, err error) {
		base := g.Base
		if base == nil {
			base = context.WithoutCancel(ctx)
		}
		cctx, cancel := context.WithTimeout(base, g.Timeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, fmt.Errorf("%s panicked: %v", key, p)
			}
		}()
		return fn(cctx)
	})
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
