package funchost

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// ScheduleStatus is a timer function's schedule record, which the host
// keeps in storage when useMonitor is on (azure-webjobs-sdk-extensions,
// Timers/Scheduling/StorageScheduleMonitor.cs: a blob per timer) and the
// simulator keeps in HostConfig.StateDir/timers/<function>.json. A zero
// time is "never".
type ScheduleStatus struct {
	Last        time.Time `json:"last"`
	Next        time.Time `json:"next"`
	LastUpdated time.Time `json:"lastUpdated"`
}

func (h *Host) statusFile(t *timer) string {
	return filepath.Join(h.cfg.StateDir, "timers", t.Function+".json")
}

// loadStatus reads t's record; nil when there is none (or no StateDir).
func (h *Host) loadStatus(t *timer) *ScheduleStatus {
	if h.cfg.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(h.statusFile(t))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			h.log.printf("%s: the schedule status is unreadable (%v): starting afresh", t.Function, err)
		}
		return nil
	}
	var st ScheduleStatus
	if err := json.Unmarshal(b, &st); err != nil {
		h.log.printf("%s: the schedule status is malformed (%v): starting afresh", t.Function, err)
		return nil
	}
	return &st
}

// saveStatus writes t's record (when t uses the monitor and there is a
// StateDir); a failure is logged, as the host logs a storage failure.
func (h *Host) saveStatus(t *timer, st ScheduleStatus) {
	if h.cfg.StateDir == "" || !t.UseMonitor {
		return
	}
	b, _ := json.Marshal(st)
	f := h.statusFile(t)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		h.log.printf("%s: cannot keep the schedule status: %v", t.Function, err)
		return
	}
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		h.log.printf("%s: cannot keep the schedule status: %v", t.Function, err)
		return
	}
	if err := os.Rename(tmp, f); err != nil {
		h.log.printf("%s: cannot keep the schedule status: %v", t.Function, err)
	}
}

// checkPastDue is ScheduleMonitor.CheckPastDueAsync
// (azure-webjobs-sdk-extensions, Timers/Scheduling/ScheduleMonitor.cs), run
// when the timer starts listening: with no record it writes one (Next the
// next occurrence) and is not past due; with one it recomputes Next from
// Last (or LastUpdated) and, if the schedule changed, takes the new Next
// (from now, if that one passed: a changed schedule is never past due);
// then it is past due if now is after the recorded Next, which it returns
// as the missed occurrence. It also seeds t's in-memory record.
func (h *Host) checkPastDue(t *timer, now time.Time) (time.Time, bool) {
	if !t.UseMonitor || h.cfg.StateDir == "" {
		return time.Time{}, false
	}
	st := h.loadStatus(t)
	if st == nil {
		h.saveStatus(t, ScheduleStatus{Next: t.Schedule.Next(now), LastUpdated: now})
		return time.Time{}, false
	}
	var expected, updated time.Time
	switch {
	case !st.Last.IsZero():
		expected, updated = t.Schedule.Next(st.Last), st.Last
	case !st.LastUpdated.IsZero():
		expected, updated = t.Schedule.Next(st.LastUpdated), st.LastUpdated
	default:
		expected, updated = t.Schedule.Next(now), now
	}
	if !st.Next.Equal(expected) {
		if now.After(expected) {
			expected, updated = t.Schedule.Next(now), now
		}
		*st = ScheduleStatus{Next: expected, LastUpdated: updated}
		h.saveStatus(t, *st)
	}
	t.mu.Lock()
	t.last, t.lastUpdated = st.Last, st.LastUpdated
	t.mu.Unlock()
	if now.After(st.Next) {
		h.log.printf("%s: past due: the occurrence at %s was missed", t.Function, st.Next.Format(time.RFC3339))
		return st.Next, true
	}
	return time.Time{}, false
}
