package appmain

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
)

// EnvCPUProfile names a file to write a CPU profile of the process to, from
// start until it stops (SIGTERM). Unset (the default) means no profiling. It
// is for `make bench-load PROFILE=<app>` (docs/performance.md) and is never
// set in infra/ (infra tests check it), since a profile costs CPU and the
// file would fill an instance's disk.
const EnvCPUProfile = "CPU_PROFILE_FILE"

// startCPUProfile starts the profile EnvCPUProfile asks for, and returns
// what stops it and writes the file out.
func startCPUProfile(log *slog.Logger) (stop func(), err error) {
	path := os.Getenv(EnvCPUProfile)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", EnvCPUProfile, err)
	}
	log.Warn("CPU profile on: for benchmarks only", "file", path)
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Error("CPU profile not written", "file", path, "error", err.Error())
		}
	}, nil
}
