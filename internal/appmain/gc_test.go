package appmain

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

// TestTuneGC: with GOGC and GOMEMLIMIT unset, the handlers' defaults
// apply; set, the environment's values (which the runtime read at start)
// are left alone.
func TestTuneGC(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	prevPercent, prevLimit := gcPercent(), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(1 << 40)
	tuneGC(log)
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != DefaultGCPercent || l != DefaultMemoryLimit {
		t.Errorf("unset: GOGC %d, memory limit %d; want %d, %d", p, l, DefaultGCPercent, DefaultMemoryLimit)
	}

	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(1 << 30)
	tuneGC(log)
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 50 || l != 1<<30 {
		t.Errorf("set: GOGC %d, memory limit %d; want the environment's 50, %d", p, l, 1<<30)
	}
}
