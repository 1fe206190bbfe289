// Command benchload is `make bench-load`: it starts the whole system on free
// loopback ports (devstack: the emulators in process, the three handlers as
// processes behind the host simulator), with the bench directory of the
// emulator (bench-directory.json: 24 Editors in two tenants), signs the
// bench users in, and runs bounded create and list loads at concurrency 10
// and 50. It prints one table (how to read it: docs/performance.md), then
// the latency of the first create after a cold start of the three apps,
// with the emulator's token endpoint slowed to -token-latency.
//
//	go run ./cmd/benchload [-n 3000] [-max 20s] [-profile task|task,audit|all] [-warm-up off] [-traces]
//
// The apps export no telemetry unless -traces: then they send their spans
// and metrics to devstack's trace receiver, as under make run, so the table
// shows what exporting costs.
//
// Linux only: CPU, memory and disk figures come from /proc/<pid>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/handoff-dev/handoff/internal/devstack"
)

// Bounds of a run, so `make bench-load` ends in well under 3 minutes.
const (
	// DefaultRequests is how many requests one load sends at most.
	DefaultRequests = 3000
	// DefaultMaxDuration bounds one load: no request starts after it.
	DefaultMaxDuration = 20 * time.Second
	// MaxRequests and MaxMaxDuration are the flags' upper limits.
	MaxRequests    = 100_000
	MaxMaxDuration = 2 * time.Minute
	// startTimeout bounds the build and the start of the stack.
	startTimeout = 3 * time.Minute
	// DefaultTokenLatency is the emulator's token latency for the cold start.
	DefaultTokenLatency = 100 * time.Millisecond
)

// Concurrencies are the loads' numbers of concurrent clients.
var Concurrencies = []int{10, 50}

type options struct {
	requests     int
	maxDuration  time.Duration
	tokenLatency time.Duration
	warmUp       string   // the apps' WARM_UP: on or off
	traces       bool     // the apps export OTLP to devstack's trace receiver
	profiles     []string // the apps whose CPU profile is written, in devstack.Apps() order
	profileDir   string
	stateDir     string // "" means a temporary directory, removed at the end
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.requests, "n", DefaultRequests, "requests per load, at most")
	fs.DurationVar(&o.maxDuration, "max", DefaultMaxDuration, "duration of one load, at most")
	fs.DurationVar(&o.tokenLatency, "token-latency", DefaultTokenLatency, "the emulator's token latency for the cold start")
	fs.StringVar(&o.warmUp, "warm-up", "on", "the apps' warm-up at start (WARM_UP): on, or off to measure the cold start without it")
	fs.BoolVar(&o.traces, "traces", false, "the apps export their spans and metrics to devstack's trace receiver, as under make run (default: no telemetry)")
	profile := fs.String("profile", "", "write a CPU profile of these apps during the loads: an app (task, notification or audit), a comma-separated list of them, or all")
	fs.StringVar(&o.profileDir, "profile-dir", filepath.Join(".state", "bench"), "where the profiles are written (<app>.cpu.pprof)")
	fs.StringVar(&o.stateDir, "state", "", "state directory (default: a new one in .state/bench, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var problems []error
	if fs.NArg() != 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.requests < 1 || o.requests > MaxRequests {
		problems = append(problems, fmt.Errorf("-n %d: want 1 to %d", o.requests, MaxRequests))
	}
	if o.maxDuration <= 0 || o.maxDuration > MaxMaxDuration {
		problems = append(problems, fmt.Errorf("-max %v: want more than 0 and at most %v", o.maxDuration, MaxMaxDuration))
	}
	if o.tokenLatency < 0 || o.tokenLatency > 10*time.Second {
		problems = append(problems, fmt.Errorf("-token-latency %v: want 0 to 10s", o.tokenLatency))
	}
	if o.warmUp != "on" && o.warmUp != "off" {
		problems = append(problems, fmt.Errorf("-warm-up %q: want on or off", o.warmUp))
	}
	var err error
	if o.profiles, err = parseProfile(*profile); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintln(stderr, "benchload:", err)
		return o, err
	}
	return o, nil
}

// parseProfile reads -profile: "" (no profile), "all", or a comma-separated
// list of apps, each at most once. The apps come back in devstack.Apps()
// order, whatever order they were named in.
func parseProfile(v string) ([]string, error) {
	switch v {
	case "":
		return nil, nil
	case "all":
		return devstack.Apps(), nil
	}
	named := strings.Split(v, ",")
	for i, app := range named {
		if !slices.Contains(devstack.Apps(), app) {
			return nil, fmt.Errorf("-profile %q: %q is not an app; want all or a comma-separated list of %v", v, app, devstack.Apps())
		}
		if slices.Contains(named[:i], app) {
			return nil, fmt.Errorf("-profile %q: %s is named twice", v, app)
		}
	}
	return slices.DeleteFunc(devstack.Apps(), func(app string) bool { return !slices.Contains(named, app) }), nil
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if runtime.GOOS != "linux" {
		return errors.New("the benchmark reads /proc: it runs on Linux only")
	}
	if _, err := os.Stat(filepath.Join("functions", "task")); err != nil {
		return errors.New("run it from the repository root (make bench-load)")
	}
	if o.stateDir == "" {
		// Under the repository's .state, not /tmp: on a tmpfs /tmp the
		// databases would write nothing to disk and the disk column would
		// read 0.
		if err := os.MkdirAll(filepath.Join(".state", "bench"), 0o700); err != nil {
			return err
		}
		tmp, err := os.MkdirTemp(filepath.Join(".state", "bench"), "run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.stateDir = tmp
	}
	b, err := startBench(ctx, o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	return b.run(ctx, out)
}
