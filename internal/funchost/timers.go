package funchost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultFunctionTimeout bounds one timer invocation, as the host's
// functionTimeout does (5 minutes, the Consumption plan's default).
const DefaultFunctionTimeout = 5 * time.Minute

// TimerFunction is a timerTrigger function a function.json declares.
type TimerFunction struct {
	// Function is the function's name (its folder): the host invokes it by
	// POSTing to the handler at /<Function>.
	Function string
	// Binding is the trigger binding's name: the key of its value in the
	// invocation's Data.
	Binding string
	// Expression is the schedule as written, e.g. %AUDIT_SWEEP_SCHEDULE%.
	Expression string
	// Schedule is the expression with app settings resolved, parsed.
	Schedule Schedule
	// UseMonitor: the invocation carries a ScheduleStatus (function.json's
	// useMonitor; when absent, true unless the schedule fires more often
	// than once a minute).
	UseMonitor bool
	// RunOnStartup: the function also runs once when the handler starts.
	RunOnStartup bool
}

// settingRef is an app-setting reference in a binding property, %NAME%.
var settingRef = regexp.MustCompile(`%([^%]*)%`)

// ResolveSettings replaces every %NAME% in s with the app setting NAME, as
// the Functions host resolves binding expressions; a setting that is unset
// or empty is an error naming it.
func ResolveSettings(s string, settings map[string]string) (string, error) {
	var missing []string
	out := settingRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v := settings[name]
		if name == "" || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		if slices.Contains(missing, "") {
			return "", fmt.Errorf("%q has an empty %%%% reference", s)
		}
		return "", fmt.Errorf("%q names the app setting %s, which is not set", s, strings.Join(missing, ", "))
	}
	return out, nil
}

// LoadTimers reads the timer triggers of every <function>/function.json in
// appDir, resolving %NAME% in their schedules from settings (the app's
// settings). Disabled functions are skipped.
func LoadTimers(appDir string, settings map[string]string) ([]TimerFunction, error) {
	fns, err := loadFunctions(appDir)
	if err != nil {
		return nil, err
	}
	var timers []TimerFunction
	for _, fn := range fns {
		name, f := fn.name, fn.file
		for _, b := range fn.Bindings {
			if !strings.EqualFold(b.Type, "timerTrigger") {
				continue
			}
			if b.Name == "" {
				return nil, fmt.Errorf("funchost: %s: the timerTrigger binding has no name", f)
			}
			if strings.EqualFold(name, "api") {
				return nil, fmt.Errorf("funchost: %s: a function named %q would be invoked at /%s, the HTTP routes' prefix", f, name, name)
			}
			expr, err := ResolveSettings(b.Schedule, settings)
			if err != nil {
				return nil, fmt.Errorf("funchost: %s: schedule: %w", f, err)
			}
			sched, err := ParseNCRONTAB(expr)
			if err != nil {
				return nil, fmt.Errorf("funchost: %s: schedule %q: %w", f, b.Schedule, err)
			}
			tf := TimerFunction{Function: name, Binding: b.Name, Expression: b.Schedule, Schedule: sched, RunOnStartup: b.RunOnStartup}
			if b.UseMonitor != nil {
				tf.UseMonitor = *b.UseMonitor
			} else {
				tf.UseMonitor = !subMinute(sched)
			}
			timers = append(timers, tf)
		}
	}
	return timers, nil
}

// subMinute reports whether s fires more than once within some minute.
func subMinute(s Schedule) bool {
	// Every second field value fires in every matching minute, so one
	// matching minute tells.
	first := s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if first.IsZero() {
		return false
	}
	second := s.Next(first)
	return !second.IsZero() && second.Sub(first) < time.Minute && second.Minute() == first.Minute()
}

// timer is a timer function's state in a Host.
type timer struct {
	TimerFunction
	sem chan struct{} // one run at a time, like the host's invocation lock

	mu          sync.Mutex
	last        time.Time // the previous scheduled run (zero: none yet)
	lastUpdated time.Time
}

func newTimers(tfs []TimerFunction) []*timer {
	var ts []*timer
	for _, tf := range tfs {
		ts = append(ts, &timer{TimerFunction: tf, sem: make(chan struct{}, 1)})
	}
	return ts
}

// scheduleTimers starts the timers' scheduling for a worker that became
// ready (unless TimersManual).
func (h *Host) scheduleTimers() {
	if len(h.timers) == 0 {
		return
	}
	if h.cfg.TimersManual {
		h.log.printf("timer functions run only when invoked (TimersManual): %s", timerNames(h.timers))
		return
	}
	run := h.startTimers()
	h.mu.Lock()
	h.timerRun = run
	h.mu.Unlock()
}

// timerRun is the scheduling of a running handler's timers.
type timerRun struct {
	stop  context.CancelFunc // stops scheduling new runs
	abort context.CancelFunc // cancels the runs in flight
	done  chan struct{}      // closed when every scheduling goroutine has returned
}

// startTimers schedules every timer function until the returned run is
// ended by endTimers.
func (h *Host) startTimers() *timerRun {
	schedCtx, stop := context.WithCancel(context.Background())
	runCtx, abort := context.WithCancel(context.Background())
	run := &timerRun{stop: stop, abort: abort, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, t := range h.timers {
		wg.Go(func() { h.schedule(schedCtx, runCtx, t) })
	}
	go func() {
		wg.Wait()
		close(run.done)
	}()
	return run
}

// endTimers stops scheduling; unless kill, a run in flight gets
// StopTimeout to finish (as the host drains its timer listeners) before
// it is cancelled.
func (h *Host) endTimers(run *timerRun, kill bool) {
	if run == nil {
		return
	}
	run.stop()
	if kill {
		run.abort()
	}
	t := time.NewTimer(h.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-run.done:
	case <-t.C:
		h.log.printf("timer runs still in flight after %s are cancelled", h.cfg.StopTimeout)
	}
	run.abort()
	<-run.done
}

// schedule fires t on its schedule until schedCtx ends, as the host's
// TimerListener does: runs never overlap; after a run the next occurrence
// is computed from when it began, so if that occurrence passed during the
// run it fires at once, and the other occurrences that passed are skipped.
func (h *Host) schedule(schedCtx, runCtx context.Context, t *timer) {
	now := time.Now().UTC()
	next := t.Schedule.Next(now)
	h.log.printf("%s: timer %q%s, next at %s", t.Function, t.Schedule.String(), fromSetting(t.Expression), next.Format(time.RFC3339))
	if due, pastDue := h.checkPastDue(t, now); pastDue && schedCtx.Err() == nil {
		h.fire(runCtx, t, due, "past due", true)
	} else if t.RunOnStartup && schedCtx.Err() == nil {
		h.fire(runCtx, t, now, "on startup", false)
	}
	for {
		if next.IsZero() {
			h.log.printf("%s: the schedule never fires again", t.Function)
			return
		}
		wait := time.NewTimer(time.Until(next))
		select {
		case <-schedCtx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		// An occurrence already past fires at once, and select picks at
		// random among ready cases: a stopped schedule must not fire.
		if schedCtx.Err() != nil {
			return
		}
		began := time.Now().UTC()
		h.fire(runCtx, t, next, "scheduled", false)
		adjusted := began
		if next.After(began) { // the timer fired early (clock skew)
			adjusted = next
		}
		next = t.Schedule.Next(adjusted)
		if skipped := countUntil(t.Schedule, next, time.Now()); skipped > 0 {
			h.log.printf("%s: %d occurrence(s) passed while the previous run was in progress: skipped", t.Function, skipped)
		}
	}
}

// countUntil counts the occurrences after from up to now (at most 1000).
func countUntil(s Schedule, from, now time.Time) int {
	n := 0
	for at := s.Next(from); !at.IsZero() && !at.After(now) && n < 1000; at = s.Next(at) {
		n++
	}
	return n
}

func fromSetting(expr string) string {
	if strings.Contains(expr, "%") {
		return " (from " + expr + ")"
	}
	return ""
}

// fire runs one scheduled occurrence; an occurrence that comes due while a
// run of the function is in progress (an Invoke) is skipped.
func (h *Host) fire(ctx context.Context, t *timer, due time.Time, why string, pastDue bool) {
	select {
	case t.sem <- struct{}{}:
	default:
		h.log.printf("%s: occurrence at %s skipped: a run is in progress", t.Function, due.Format(time.RFC3339))
		return
	}
	defer func() { <-t.sem }()
	ctx, cancel := context.WithTimeout(ctx, DefaultFunctionTimeout)
	defer cancel()
	began := time.Now().UTC()
	h.log.printf("%s: executing (%s, due %s)", t.Function, why, due.Format(time.RFC3339))
	_, _ = h.invoke(ctx, t, due, began, pastDue)
	t.mu.Lock()
	t.last, t.lastUpdated = began, began
	if due.After(began) {
		t.last, t.lastUpdated = due, due
	}
	st := ScheduleStatus{Last: t.last, Next: t.Schedule.Next(t.last), LastUpdated: t.lastUpdated}
	t.mu.Unlock()
	h.saveStatus(t, st)
}

// Timers are the timer functions the app declares.
func (h *Host) Timers() []TimerFunction {
	var tfs []TimerFunction
	for _, t := range h.timers {
		tfs = append(tfs, t.TimerFunction)
	}
	return tfs
}

// Invoke runs a timer function now, as the host's admin endpoint does
// (POST /admin/functions/{name}): it POSTs the invocation to the handler at
// /<function> (IsPastDue false; a ScheduleStatus with the schedule's
// record if the function uses the monitor, Next the schedule's next
// occurrence), and returns the Logs the handler answered. A non-2xx answer
// (the host counts the invocation as failed), a malformed one, or a handler
// that is not running is an error (with the Logs of a failure's body, if
// any). It waits for a scheduled run in progress to finish first; it does
// not change the schedule's record. It is bounded by ctx and by
// DefaultFunctionTimeout.
func (h *Host) Invoke(ctx context.Context, function string) ([]string, error) {
	var t *timer
	for _, c := range h.timers {
		if c.Function == function {
			t = c
		}
	}
	if t == nil {
		var names []string
		for _, c := range h.timers {
			names = append(names, c.Function)
		}
		return nil, fmt.Errorf("funchost: %s has no timer function %q (its timer functions: %v)", h.cfg.Name, function, names)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultFunctionTimeout)
	defer cancel()
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("funchost: %s: %s: waiting for the run in progress: %w", h.cfg.Name, function, ctx.Err())
	}
	defer func() { <-t.sem }()
	now := time.Now().UTC()
	h.log.printf("%s: executing (invoked)", function)
	return h.invoke(ctx, t, t.Schedule.Next(now), now, false)
}

// hostTime formats a time as the host's JSON does: .NET's round-trip
// format with the offset, and the record's zero time without one.
func hostTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00"
	}
	return t.Format("2006-01-02T15:04:05.0000000-07:00")
}

// invoke sends one invocation and logs its outcome; the caller holds t.sem.
func (h *Host) invoke(ctx context.Context, t *timer, next, now time.Time, pastDue bool) ([]string, error) {
	logs, err := h.send(ctx, t, next, now, pastDue)
	for _, l := range logs {
		h.log.printf("%s: %s", t.Function, l)
	}
	took := time.Since(now).Round(time.Millisecond)
	if err != nil {
		h.log.printf("%s: failed after %s: %v", t.Function, took, err)
		return logs, fmt.Errorf("funchost: %s: %s: %w", h.cfg.Name, t.Function, err)
	}
	h.log.printf("%s: succeeded in %s", t.Function, took)
	return logs, nil
}

func (h *Host) send(ctx context.Context, t *timer, next, now time.Time, pastDue bool) ([]string, error) {
	target := h.target.Load()
	if target == nil {
		return nil, errors.New("the handler is not running")
	}
	type status struct {
		Last        string `json:"Last"`
		Next        string `json:"Next"`
		LastUpdated string `json:"LastUpdated"`
	}
	type info struct {
		Schedule       struct{ AdjustForDST bool } `json:"Schedule"`
		ScheduleStatus *status                     `json:"ScheduleStatus"`
		IsPastDue      bool                        `json:"IsPastDue"`
	}
	ti := info{IsPastDue: pastDue}
	ti.Schedule.AdjustForDST = true
	if t.UseMonitor {
		t.mu.Lock()
		ti.ScheduleStatus = &status{Last: hostTime(t.last), Next: hostTime(next), LastUpdated: hostTime(t.lastUpdated)}
		t.mu.Unlock()
	}
	body, err := json.Marshal(map[string]any{
		"Data": map[string]any{t.Binding: ti},
		// The trigger's own binding data (TimerTrigger) is left out of
		// Metadata, as the host leaves out every key ending in "trigger".
		"Metadata": map[string]any{
			"sys": map[string]string{"MethodName": t.Function, "UtcNow": now.Format(time.RFC3339Nano), "RandGuid": invocationID()},
		},
	})
	if err != nil {
		return nil, err
	}
	u := *target
	u.Path = "/" + t.Function
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	addHostHeaders(req.Header, invocationID())
	resp, err := (&http.Client{Transport: h.transport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var res struct {
		Outputs     map[string]json.RawMessage `json:"Outputs"`
		Logs        []string                   `json:"Logs"`
		ReturnValue json.RawMessage            `json:"ReturnValue"`
	}
	perr := json.Unmarshal(raw, &res)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res.Logs, fmt.Errorf("the handler answered %s: %s", resp.Status, snippet(raw))
	}
	if perr != nil {
		return nil, fmt.Errorf("the handler's answer is not an invocation result ({\"Outputs\",\"Logs\",\"ReturnValue\"}): %v: %s", perr, snippet(raw))
	}
	return res.Logs, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// invocationID is a random UUID (version 4), as the host's invocation ids.
func invocationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func timerNames(ts []*timer) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Function)
	}
	return strings.Join(names, ", ")
}
