package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

// row is one load's line of the table.
type row struct {
	name     string
	conc     int
	n, errs  int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted
	cpu      map[string]time.Duration
	written  map[string]int64
	peakRSS  map[string]int64
	grants   map[string]int64 // token endpoint requests by grant, plus managed identity requests
}

// snapshot is the processes' and the emulator's counters at one moment.
type snapshot struct {
	procs map[string]procSample
	stats entra.Stats
}

func (b *bench) snapshot() (snapshot, error) {
	s := snapshot{procs: map[string]procSample{}, stats: b.stack.Entra.Stats()}
	for _, app := range devstack.Apps() {
		p, err := readProc(b.stack.PID(app))
		if err != nil {
			return s, fmt.Errorf("%s: %w", app, err)
		}
		s.procs[app] = p
	}
	return s, nil
}

// measure runs one load and what the processes did during it.
func (b *bench) measure(ctx context.Context, name string, conc int, fn func(context.Context, int) error) (row, error) {
	before, err := b.snapshot()
	if err != nil {
		return row{}, err
	}
	r := runLoad(ctx, conc, b.o.requests, b.o.maxDuration, fn)
	r.name = name
	after, err := b.snapshot()
	if err != nil {
		return row{}, err
	}
	r.cpu, r.written, r.peakRSS = map[string]time.Duration{}, map[string]int64{}, map[string]int64{}
	for _, app := range devstack.Apps() {
		r.cpu[app] = after.procs[app].cpu - before.procs[app].cpu
		r.written[app] = after.procs[app].writeBytes - before.procs[app].writeBytes
		r.peakRSS[app] = after.procs[app].peakRSS
	}
	r.grants = map[string]int64{}
	for g, n := range after.stats.Grants {
		r.grants[g] = n - before.stats.Grants[g]
	}
	mi := entra.EndpointManagedIdentity
	r.grants[mi] = after.stats.Requests[mi] - before.stats.Requests[mi]
	return r, nil
}

// runLoad calls fn with 0, 1, 2, ... from conc goroutines until n calls
// were made or max has passed (no call starts after it).
func runLoad(ctx context.Context, conc, n int, max time.Duration, fn func(context.Context, int) error) row {
	r := row{conc: conc}
	deadline := time.Now().Add(max)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var firstErr error
			for {
				i := int(next.Add(1) - 1)
				if i >= n || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				err := fn(ctx, i)
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					firstErr = cmpOr(firstErr, err)
				}
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.errs += errs
			r.firstErr = cmpOr(r.firstErr, firstErr)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.n = len(r.lat)
	slices.Sort(r.lat)
	return r
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// quantile of sorted latencies (nearest rank); 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
