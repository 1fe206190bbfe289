package appmain

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// The garbage collector's settings of the handlers, when the environment
// sets none (GOGC and GOMEMLIMIT, read by the Go runtime, win when set).
//
// A handler's live heap is small (a few MB) and every request allocates,
// so with Go's default (GOGC=100) the collector ran every few hundred
// requests, and each cycle also scans the SQLite driver's large global
// data: about 8% of the Task API's CPU (make bench-load PROFILE=task,
// docs/performance.md). At 400 it runs a fifth as often for a heap up to
// five times the live one: tens of MB, where Flex's smallest instance has
// 512 MB. The memory limit keeps a heap that grows (large caches, a
// burst) from taking the instance: near it the collector runs as often as
// it must, whatever GOGC says.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 256 << 20 // bytes
)

// tuneGC applies the defaults above where the environment sets nothing.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	log.Debug("garbage collector", "gc_percent", gcPercent(), "memory_limit_bytes", debug.SetMemoryLimit(-1))
}

// gcPercent reads the current GOGC (SetGCPercent returns the previous
// value; setting it back leaves it as it was).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
