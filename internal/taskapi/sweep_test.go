package taskapi

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/store"
)

// queue writes n tasks with their audit events (due at once), as creates
// whose own delivery failed would leave them.
func queue(t *testing.T, st store.Store, n int) {
	t.Helper()
	for i := range n {
		ev := store.OutboxEvent{EventID: newEventID(), Action: "task.created", Actor: entra.AliceOID}
		if _, err := st.CreateTask(t.Context(), store.Task{TenantID: entra.HomeTenantID, Title: "queued " + strconv.Itoa(i),
			CreatedBy: entra.AliceOID, CreatedByName: "Alice Admin"}, &ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepDrainsTheOutbox: 10,000 queued events drain in one sweep, page
// after page, to the Audit Service (real, over HTTP, validating each
// token); none is left and each is one audit entry. The budget is made
// large so that the machine's speed decides nothing; the rate is logged
// (SWEEP_RATE_LOG=1 prints it without -v).
func TestSweepDrainsTheOutbox(t *testing.T) {
	const n = 10_000
	h := newHarness(t, func(c *Config) { c.SweepBudget = time.Hour })
	queue(t, h.st, n)
	if due, err := h.st.CountDue(t.Context(), h.clock.Now()); err != nil || due != n {
		t.Fatalf("CountDue before = %d, %v; want %d", due, err, n)
	}
	start := time.Now()
	res, err := h.app.Sweep(t.Context())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != n || res.Retrying != 0 || res.DeadLettered != 0 || res.Left != 0 || res.Pages != n/SweepBatch {
		t.Fatalf("one sweep: %+v; want %d delivered in %d pages, none left", res, n, n/SweepBatch)
	}
	if due, err := h.st.CountDue(t.Context(), h.clock.Now().Add(24*time.Hour)); err != nil || due != 0 {
		t.Errorf("CountDue after = %d, %v; want 0", due, err)
	}
	if got := h.auditCount(t); got != n {
		t.Errorf("%d audit entries, want %d", got, n)
	}
	msg := fmt.Sprintf("sweep: %d events in %v, %.0f events/s (%d in flight)", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), SweepConcurrency)
	t.Log(msg)
	if os.Getenv("SWEEP_RATE_LOG") != "" {
		fmt.Println(msg)
	}
}

// TestSweepSaysWhatItLeft: a sweep whose budget is spent before it starts
// delivers nothing and counts what it left.
func TestSweepSaysWhatItLeft(t *testing.T) {
	const n = 150
	h := newHarness(t, func(c *Config) { c.SweepBudget = time.Nanosecond })
	queue(t, h.st, n)
	res, err := h.app.Sweep(t.Context())
	if err != nil || res.Delivered != 0 || res.Left != n {
		t.Fatalf("sweep without budget: %+v, %v; want nothing delivered, %d left", res, err, n)
	}
	h.app.cfg.SweepBudget = time.Hour
	res, err = h.app.Sweep(t.Context())
	if err != nil || res.Delivered != n || res.Left != 0 || res.Pages != 2 {
		t.Fatalf("sweep with budget: %+v, %v; want %d delivered in 2 pages, none left", res, err, n)
	}
}
