package main

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlags: the defaults, and each bound refused with a message naming it.
func TestFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.requests != DefaultRequests || o.maxDuration != DefaultMaxDuration ||
		o.tokenLatency != DefaultTokenLatency || o.warmUp != "on" || o.profiles != nil || o.traces {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "-n 0"},
		{[]string{"-n", "100001"}, "-n 100001"},
		{[]string{"-max", "0s"}, "-max 0s"},
		{[]string{"-max", "3m"}, "-max 3m0s"},
		{[]string{"-token-latency", "-1ms"}, "-token-latency"},
		{[]string{"-token-latency", "11s"}, "-token-latency"},
		{[]string{"-warm-up", "no"}, `-warm-up "no"`},
		{[]string{"-profile", "web"}, `-profile "web": "web" is not an app`},
		{[]string{"-profile", "task,web"}, `"web" is not an app`},
		{[]string{"-profile", "task,"}, `"" is not an app`},
		{[]string{"-profile", "All"}, `"All" is not an app`},
		{[]string{"-profile", "task,all"}, `"all" is not an app`},
		{[]string{"-profile", "audit,task,audit"}, "audit is named twice"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stderr strings.Builder
		if _, err := parseFlags(tc.args, &stderr); err == nil || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: error %v, stderr %q; want it to name %q", tc.args, err, stderr.String(), tc.want)
		}
	}
	if o, err := parseFlags([]string{"-n", "100000", "-max", "2m", "-profile", "audit", "-warm-up", "off", "-traces"}, io.Discard); err != nil ||
		o.requests != MaxRequests || o.maxDuration != MaxMaxDuration || !slices.Equal(o.profiles, []string{"audit"}) || o.warmUp != "off" || !o.traces {
		t.Errorf("the upper bounds: %+v, %v", o, err)
	}
	// Several apps, in any order, come back in devstack.Apps() order.
	for arg, want := range map[string][]string{
		"all":                     {"task", "notification", "audit"},
		"audit,task":              {"task", "audit"},
		"audit,notification,task": {"task", "notification", "audit"},
		"notification":            {"notification"},
	} {
		if o, err := parseFlags([]string{"-profile", arg}, io.Discard); err != nil || !slices.Equal(o.profiles, want) {
			t.Errorf("-profile %s: %v, %v; want %v", arg, o.profiles, err, want)
		}
	}
}

// TestRunLoadBounded: a load stops at its request count, counts failures
// and keeps the first; one whose time is up starts no request.
func TestRunLoadBounded(t *testing.T) {
	var calls atomic.Int64
	r := runLoad(context.Background(), 7, 100, time.Hour, func(_ context.Context, i int) error {
		calls.Add(1)
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if r.n != 100 || calls.Load() != 100 || r.errs != 10 || r.firstErr == nil {
		t.Fatalf("n=%d calls=%d errs=%d first=%v; want 100, 100, 10, an error", r.n, calls.Load(), r.errs, r.firstErr)
	}
	calls.Store(0)
	r = runLoad(context.Background(), 3, 100, -time.Second, func(context.Context, int) error { calls.Add(1); return nil })
	if r.n != 0 || calls.Load() != 0 {
		t.Errorf("a load past its deadline sent %d requests", calls.Load())
	}
}

func TestQuantile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 1: 100, 0: 1} {
		if got := quantile(lat, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

// TestReadProc reads this process: it has used CPU and memory; a missing
// process is an error.
func TestReadProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	deadline := time.Now().Add(30 * time.Second)
	var p procSample
	var err error
	for p.cpu == 0 && time.Now().Before(deadline) { // burn CPU until a tick is counted
		for i := 0; i < 1e6; i++ {
			_ = strings.Repeat("x", i%7)
		}
		if p, err = readProc(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if p.cpu <= 0 || p.peakRSS <= 0 || p.writeBytes < 0 {
		t.Errorf("readProc(self) = %+v", p)
	}
	if _, err := readProc(0); err == nil {
		t.Error("pid 0 was read")
	}
}
