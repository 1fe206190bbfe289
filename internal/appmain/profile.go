package appmain

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
)

// EnvCPUProfile names a file to write a CPU profile of the process to, from
// start until it stops (SIGTERM) or, on Unix, until it gets SIGUSR1 (the
// Functions host, and devstack's, stop a handler by killing it, which
// leaves no time to write anything: make bench-load sends SIGUSR1 first).
// The profile is written to the file's name plus ".partial" and renamed
// to the name once complete, so a reader that sees the name sees it whole.
// Unset (the default) means no profiling. It is for
// `make bench-load PROFILE=<app>` (docs/performance.md) and is never set in
// infra/ (infra tests check it), since a profile costs CPU and the file
// would fill an instance's disk.
const EnvCPUProfile = "CPU_PROFILE_FILE"

// startCPUProfile starts the profile EnvCPUProfile asks for, and returns
// what stops it and writes the file out (once: later calls do nothing).
func startCPUProfile(log *slog.Logger) (stop func(), err error) {
	path := os.Getenv(EnvCPUProfile)
	if path == "" {
		return func() {}, nil
	}
	partial := path + ".partial"
	f, err := os.Create(partial)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", EnvCPUProfile, err)
	}
	log.Warn("CPU profile on: for benchmarks only", "file", path)
	stop = sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		err := f.Close()
		if err == nil {
			err = os.Rename(partial, path)
		}
		if err != nil {
			log.Error("CPU profile not written", "file", path, "error", err.Error())
			return
		}
		log.Info("CPU profile written", "file", path)
	})
	stopOnSignal(stop)
	return stop, nil
}

// stopOnSignal calls stop when the process gets one of profileSignals.
func stopOnSignal(stop func()) {
	if len(profileSignals) == 0 {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, profileSignals...)
	go func() {
		<-sig
		signal.Stop(sig)
		stop()
	}()
}
