package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// BenchmarkWrites times the writes of a create in each service, with the
// statements prepared (as the store runs them) and unprepared (the store's
// statement bound at 0: every call prepares anew, as before the cache), so
// the two compare in one run: go test -bench Writes ./internal/store/sqlite
func BenchmarkWrites(b *testing.B) {
	for _, mode := range []struct {
		name  string
		bound int
	}{{"prepared", sqlite.MaxCachedStatements}, {"unprepared", 0}} {
		b.Run("create-task/"+mode.name, func(b *testing.B) {
			s := benchStore(b, mode.bound)
			for i := 0; b.Loop(); i++ {
				ev := &store.OutboxEvent{EventID: store.NewID(), Action: "task.created", Actor: "u"}
				t, err := s.CreateTask(b.Context(), store.Task{TenantID: "t", Title: "bench", CreatedBy: "u", CreatedByName: "U"}, ev)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.MarkDelivered(b.Context(), t.TenantID, ev.EventID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("audit/"+mode.name, func(b *testing.B) {
			s := benchStore(b, mode.bound)
			for i := 0; b.Loop(); i++ {
				if _, _, err := s.AppendAudit(b.Context(), store.AuditEntry{EventID: store.NewID(), TenantID: "t",
					Action: "task.created", ResourceID: fmt.Sprint(i), Actor: "u", CallerApp: "a"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchStore(b *testing.B, bound int) *sqlite.Store {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	s.SetStatementBound(bound)
	if bound == 0 {
		s.ForgetStatements()
	}
	return s
}
