//go:build unix

package funchost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/funchost"
)

// Function documents of the timer tests' app (the fake handler serves
// /sweep, /broken, /slow and /garbage).
const (
	fnSweep   = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"%SWEEP_SCHEDULE%","runOnStartup":false,"useMonitor":true}]}`
	fnBroken  = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 0 0 1 1 *"}]}`
	fnGarbage = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 0 0 1 1 *"}]}`
	fnSlow    = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"*/1 * * * * *"}]}`
	fnThings  = `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"things","methods":["get","post"]},{"type":"http","direction":"out","name":"res"}]}`
)

// writeApp writes an app folder with one sub-folder per function.
func writeApp(t *testing.T, functions map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, doc := range functions {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTimerHost(t *testing.T, functions, env map[string]string, manual bool) (*funchost.Host, *syncBuffer, error) {
	t.Helper()
	return newTimerHostIn(t, functions, env, manual, "")
}

// newTimerHostIn is newTimerHost with a StateDir.
func newTimerHostIn(t *testing.T, functions, env map[string]string, manual bool, stateDir string) (*funchost.Host, *syncBuffer, error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{envFakeHandler: "echo"}
	for k, v := range env {
		all[k] = v
	}
	out := &syncBuffer{}
	h, err := funchost.NewHost(funchost.HostConfig{
		Name: "fake", Command: exe, AppDir: writeApp(t, functions), Listener: l,
		Env: all, Output: out, TimersManual: manual, StateDir: stateDir,
	})
	if err != nil {
		l.Close()
		return nil, out, err
	}
	t.Cleanup(func() {
		_ = h.Kill()
		_ = h.Close()
		if t.Failed() {
			t.Logf("host output:\n%s", out)
		}
	})
	return h, out, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostInvokesTimerFunctions(t *testing.T) {
	h, o, err := newTimerHost(t, map[string]string{"sweep": fnSweep, "broken": fnBroken, "garbage": fnGarbage, "things": fnThings},
		map[string]string{"SWEEP_SCHEDULE": "*/1 * * * * *"}, true)
	if err != nil {
		t.Fatal(err)
	}
	timers := h.Timers()
	if len(timers) != 3 || timers[2].Function != "sweep" || timers[2].Binding != "timer" || timers[2].Expression != "%SWEEP_SCHEDULE%" ||
		timers[2].Schedule.String() != "*/1 * * * * *" || !timers[2].UseMonitor || timers[2].RunOnStartup {
		t.Fatalf("Timers() = %+v", timers)
	}
	if len(h.Routes()) != 1 {
		t.Errorf("Routes() = %+v: a timer function has no route", h.Routes())
	}

	if _, err := h.Invoke(context.Background(), "sweep"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Invoke before Start: %v", err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	t.Run("the handler's logs come back", func(t *testing.T) {
		before := time.Now().UTC()
		logs, err := h.Invoke(context.Background(), "sweep")
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 3 || logs[0] != "swept" || logs[1] != "past due: false" {
			t.Fatalf("logs %q", logs)
		}
		// No scheduled run yet: the record is the host's empty one, and
		// Next the schedule's next occurrence.
		var next time.Time
		fields := strings.Fields(logs[2])
		if len(fields) != 3 || fields[0] != "last=0001-01-01T00:00:00Z" || fields[2] != "updated=0001-01-01T00:00:00Z" {
			t.Fatalf("status %q", logs[2])
		}
		next, err = time.Parse(time.RFC3339Nano, strings.TrimPrefix(fields[1], "next="))
		if err != nil || !next.After(before) || next.After(before.Add(2*time.Second)) || next.Nanosecond() != 0 {
			t.Errorf("Next %s (%v), want the next whole second after %s", next, err, before)
		}
	})

	t.Run("a failure is an error, with the logs", func(t *testing.T) {
		logs, err := h.Invoke(context.Background(), "broken")
		if err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("Invoke broken: %v", err)
		}
		if strings.Join(logs, "|") != "tried|error: store unavailable" {
			t.Errorf("logs %q", logs)
		}
	})

	t.Run("an answer that is not an invocation result is an error", func(t *testing.T) {
		if _, err := h.Invoke(context.Background(), "garbage"); err == nil || !strings.Contains(err.Error(), "not an invocation result") {
			t.Errorf("Invoke garbage: %v", err)
		}
	})

	t.Run("only timer functions", func(t *testing.T) {
		for _, fn := range []string{"nope", "things", "Sweep"} {
			if _, err := h.Invoke(context.Background(), fn); err == nil || !strings.Contains(err.Error(), "no timer function") {
				t.Errorf("Invoke %q: %v", fn, err)
			}
		}
	})

	t.Run("a timer function is not reachable over HTTP", func(t *testing.T) {
		for _, path := range []string{"/sweep", "/api/sweep", "/broken"} {
			for _, method := range []string{"GET", "POST"} {
				if r := do(t, method, h.URL()+path, strings.NewReader(`{"Data":{}}`)); r.status != http.StatusNotFound || len(r.raw) != 0 {
					t.Errorf("%s %s: %d %s, want an empty 404", method, path, r.status, r.raw)
				}
			}
		}
		if r := do(t, "GET", h.URL()+"/api/things", nil); r.status != http.StatusTeapot {
			t.Errorf("GET /api/things: %d, want it forwarded", r.status)
		}
	})

	t.Run("TimersManual: nothing fires on its own", func(t *testing.T) {
		// A negative: wait past two occurrences of the every-second schedule.
		runs := strings.Count(o.String(), "fake sweep ran")
		time.Sleep(2200 * time.Millisecond)
		if got := strings.Count(o.String(), "fake sweep ran"); got != runs {
			t.Errorf("%d runs without an Invoke", got-runs)
		}
	})

	for _, want := range []string{
		"[fake host] timer functions run only when invoked (TimersManual): broken, garbage, sweep\n",
		"[fake host] sweep: executing (invoked)\n",
		"[fake host] sweep: swept\n",
		"[fake host] sweep: succeeded in ",
		"[fake host] broken: error: store unavailable\n",
		"[fake host] broken: failed after ",
		"[fake] fake sweep ran\n",
	} {
		if !strings.Contains(o.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Invoke(context.Background(), "sweep"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Invoke after Stop: %v", err)
	}
}

func TestHostFiresTimersOnSchedule(t *testing.T) {
	h, o, err := newTimerHost(t, map[string]string{"sweep": fnSweep, "things": fnThings},
		map[string]string{"SWEEP_SCHEDULE": "*/1 * * * * *"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	runs := func() int { return strings.Count(o.String(), "[fake] fake sweep ran\n") }
	// The host logs a run's Logs once the handler has answered.
	waitFor(t, 15*time.Second, "two scheduled runs", func() bool { return strings.Count(o.String(), "[fake host] sweep: succeeded") >= 2 })

	s := o.String()
	if !strings.Contains(s, `[fake host] sweep: timer "*/1 * * * * *" (from %SWEEP_SCHEDULE%), next at `) ||
		!strings.Contains(s, "[fake host] sweep: executing (scheduled, due ") {
		t.Errorf("the firings are not logged:\n%s", s)
	}
	// The first run has the host's empty record; later ones the previous run.
	if !strings.Contains(s, "[fake host] sweep: last=0001-01-01T00:00:00Z") {
		t.Error("no first run with an empty record")
	}
	if strings.Count(s, "[fake host] sweep: last=") < 2 || strings.Count(s, "[fake host] sweep: last=0001-01-01T00:00:00Z") >= strings.Count(s, "[fake host] sweep: last=") {
		t.Error("no run with the previous run's record")
	}

	// Stopping the handler stops its timers (a negative: wait past two
	// occurrences).
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := runs()
	time.Sleep(2200 * time.Millisecond)
	if got := runs(); got != stopped {
		t.Errorf("%d runs after Stop", got-stopped)
	}
	if strings.Contains(o.String(), "sweep: failed") {
		t.Errorf("a run failed:\n%s", o)
	}

	// Started again, it fires again; after a crash and the host's restart,
	// it fires once per occurrence still; Close stops it for good.
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a run after a restart", func() bool { return runs() > stopped })
	crashedPID := h.PID()
	if err := syscallKill(crashedPID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the restart", func() bool { p := h.PID(); return p != 0 && p != crashedPID })
	crashed := runs()
	waitFor(t, 15*time.Second, "two runs after a crash", func() bool { return runs() >= crashed+2 })
	// Each occurrence is taken up once (run, or skipped beside a run).
	dues := map[string]int{}
	for _, line := range strings.Split(o.String(), "\n") {
		due, ok := strings.CutPrefix(line, "[fake host] sweep: executing (scheduled, due ")
		if !ok {
			due, _, ok = strings.Cut(strings.TrimPrefix(line, "[fake host] sweep: occurrence at "), " skipped: a run is in progress")
		}
		if !ok {
			continue
		}
		due = strings.TrimSuffix(due, ")")
		if dues[due]++; dues[due] == 2 {
			t.Errorf("the occurrence at %s was taken up twice (two schedulers)", due)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	closed := runs()
	time.Sleep(1200 * time.Millisecond)
	if got := runs(); got != closed {
		t.Errorf("%d runs after Close", got-closed)
	}
}

func TestHostTimerRunsNeverOverlap(t *testing.T) {
	// slow fires every second and runs for 2.5 s.
	h, o, err := newTimerHost(t, map[string]string{"slow": fnSlow}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Timers(); len(got) != 1 || got[0].UseMonitor {
		t.Errorf("Timers() = %+v: a schedule under a minute has no monitor by default", got)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Invocations beside the schedule wait for the run in progress.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if logs, err := h.Invoke(context.Background(), "slow"); err != nil || len(logs) != 1 || logs[0] != "slow done" {
				t.Errorf("Invoke slow: %q, %v", logs, err)
			}
		})
	}
	waitFor(t, 30*time.Second, "three runs of slow", func() bool { return strings.Count(o.String(), "[fake] fake slow ran\n") >= 3 })
	wg.Wait()
	waitFor(t, 15*time.Second, "a skipped occurrence", func() bool {
		s := o.String()
		return strings.Contains(s, "passed while the previous run was in progress: skipped") || strings.Contains(s, "skipped: a run is in progress")
	})
	if strings.Contains(o.String(), "OVERLAP") {
		t.Errorf("two runs overlapped:\n%s", o)
	}
	// Close lets the run in flight finish (StopTimeout) before stopping.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(o.String(), "slow: failed"); n > 0 || strings.Contains(o.String(), "still in flight") {
		t.Errorf("%d runs failed, or a run outlasted the stop timeout:\n%s", n, o)
	}
	if got := strings.Count(o.String(), "[fake] fake slow ran\n"); got != strings.Count(o.String(), "slow: succeeded") {
		t.Errorf("%d runs began after Close began", got-strings.Count(o.String(), "slow: succeeded"))
	}
}

func TestNewHostTimerSchedules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		functions map[string]string
		env       map[string]string
		want      string
	}{
		{"unset setting", map[string]string{"sweep": fnSweep}, nil,
			`sweep/function.json: schedule: "%SWEEP_SCHEDULE%" names the app setting SWEEP_SCHEDULE, which is not set`},
		{"empty setting", map[string]string{"sweep": fnSweep}, map[string]string{"SWEEP_SCHEDULE": ""}, "SWEEP_SCHEDULE, which is not set"},
		{"five fields", map[string]string{"sweep": fnSweep}, map[string]string{"SWEEP_SCHEDULE": "*/5 * * * *"},
			"NCRONTAB needs six fields: second minute hour day month day-of-week"},
		{"out of range", map[string]string{"sweep": fnSweep}, map[string]string{"SWEEP_SCHEDULE": "0 0 24 * * *"}, "hour field"},
		{"empty reference", map[string]string{"sweep": strings.Replace(fnSweep, "%SWEEP_SCHEDULE%", "%%", 1)}, nil, "empty %% reference"},
		{"named api", map[string]string{"api": fnBroken}, nil, `a function named "api"`},
		{"no name", map[string]string{"x": `{"bindings":[{"type":"timerTrigger","direction":"in","schedule":"0 0 0 1 1 *"}]}`}, nil, "has no name"},
		{"nothing", map[string]string{"off": `{"disabled":true,"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"nope"}]}`}, nil,
			"declares no HTTP or timer trigger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newTimerHost(t, tc.functions, tc.env, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewHost: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("an app of timers alone", func(t *testing.T) {
		h, _, err := newTimerHost(t, map[string]string{"broken": fnBroken}, nil, true)
		if err != nil || len(h.Timers()) != 1 || len(h.Routes()) != 0 {
			t.Fatalf("NewHost: %v", err)
		}
	})
}

func TestLoadTimers(t *testing.T) {
	dir := writeApp(t, map[string]string{
		"sweep":  fnSweep,
		"often":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"*/10 * * * * *"}]}`,
		"minute": `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 * * * * *","runOnStartup":true}]}`,
		"quiet":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 %M% %H% * * *","useMonitor":false}]}`,
		"off":    `{"disabled":true,"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"%UNSET%"}]}`,
		"things": fnThings,
	})
	timers, err := funchost.LoadTimers(dir, map[string]string{"SWEEP_SCHEDULE": "0 */5 * * * *", "M": "30", "H": "9"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tf := range timers {
		got = append(got, tf.Function+" "+tf.Schedule.String()+" "+map[bool]string{true: "monitor", false: "-"}[tf.UseMonitor]+" "+map[bool]string{true: "startup", false: "-"}[tf.RunOnStartup])
	}
	want := []string{"minute 0 * * * * * monitor startup", "often */10 * * * * * - -", "quiet 0 30 9 * * * - -", "sweep 0 */5 * * * * monitor -"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("LoadTimers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestResolveSettings(t *testing.T) {
	env := map[string]string{"A": "0 */5 * * * *", "B": "x"}
	for in, want := range map[string]string{"%A%": "0 */5 * * * *", "0 0 0 1 1 *": "0 0 0 1 1 *", "%B%-%B%": "x-x"} {
		if got, err := funchost.ResolveSettings(in, env); err != nil || got != want {
			t.Errorf("ResolveSettings(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := funchost.ResolveSettings("%A% %C% %D%", env); err == nil || !strings.Contains(err.Error(), "C, D") {
		t.Errorf("unset settings: %v", err)
	}
}

// TestHostTimerPastDue: with useMonitor, a missed occurrence recorded in the
// state directory (as the host's storage keeps it) fires at once on start
// with IsPastDue, carrying the record; the record then moves on. A changed
// schedule is not past due; without useMonitor nothing is.
func TestHostTimerPastDue(t *testing.T) {
	const yearly = `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 0 0 1 1 *","useMonitor":%s}]}`
	write := func(t *testing.T, dir string, st funchost.ScheduleStatus) {
		b, _ := json.Marshal(st)
		os.MkdirAll(filepath.Join(dir, "timers"), 0o700)
		if err := os.WriteFile(filepath.Join(dir, "timers", "sweep.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jan := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	start := func(t *testing.T, monitor string, dir string) *syncBuffer {
		h, o, err := newTimerHostIn(t, map[string]string{"sweep": fmt.Sprintf(yearly, monitor)}, nil, false, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return o
	}

	t.Run("a missed occurrence fires at once, past due", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, funchost.ScheduleStatus{Last: jan(2020), Next: jan(2021), LastUpdated: jan(2020)})
		o := start(t, "true", dir)
		waitFor(t, 20*time.Second, "the past-due run", func() bool { return strings.Contains(o.String(), "sweep: succeeded") })
		for _, want := range []string{"sweep: executing (past due, due 2021-01-01T00:00:00Z)", "sweep: past due: true",
			"sweep: last=2020-01-01T00:00:00Z next=2021-01-01T00:00:00Z updated=2020-01-01T00:00:00Z"} {
			if !strings.Contains(o.String(), want) {
				t.Errorf("output lacks %q", want)
			}
		}
		var st funchost.ScheduleStatus
		waitFor(t, 20*time.Second, "the record moved on", func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "timers", "sweep.json"))
			return json.Unmarshal(b, &st) == nil && st.Last.After(jan(2025)) && st.Next.After(st.Last)
		})
	})
	t.Run("a changed schedule is not past due", func(t *testing.T) {
		dir := t.TempDir()
		// Next does not follow Last under the yearly schedule: it changed.
		write(t, dir, funchost.ScheduleStatus{Last: jan(2020), Next: jan(2020).Add(time.Hour), LastUpdated: jan(2020)})
		o := start(t, "true", dir)
		waitFor(t, 20*time.Second, "the timer", func() bool { return strings.Contains(o.String(), "sweep: timer") })
		if strings.Contains(o.String(), "past due") {
			t.Errorf("a changed schedule ran past due:\n%s", o)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "timers", "sweep.json"))
		var st funchost.ScheduleStatus
		if json.Unmarshal(b, &st) != nil || !st.Last.IsZero() || !st.Next.After(time.Now()) {
			t.Errorf("the record after a schedule change: %s", b)
		}
	})
	t.Run("without useMonitor nothing is kept", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, funchost.ScheduleStatus{Last: jan(2020), Next: jan(2021), LastUpdated: jan(2020)})
		o := start(t, "false", dir)
		waitFor(t, 20*time.Second, "the timer", func() bool { return strings.Contains(o.String(), "sweep: timer") })
		if strings.Contains(o.String(), "past due") {
			t.Errorf("ran past due without the monitor:\n%s", o)
		}
	})
}
