package store_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
	"github.com/handoff-dev/handoff/internal/store/storetest"
)

// The traced store meets the whole contract: it passes every call through.
func TestTracedContract(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return store.Traced(s, store.SystemSQLite, tp)
	})
}

// Each operation is one client span, named after it, a child of the
// caller's span; a failure says its kind.
func TestTracedSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s, err := sqlite.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := store.Traced(s, store.SystemSQLite, tp)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	task, err := st.CreateTask(ctx, store.Task{TenantID: "t1", Title: "x", CreatedBy: "oid"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetTask(ctx, "t1", "missing"); err == nil {
		t.Fatal("GetTask(missing) succeeded")
	}
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want CreateTask, GetTask and the parent", len(spans))
	}
	attrs := func(i int) map[attribute.Key]string {
		m := map[attribute.Key]string{}
		for _, kv := range spans[i].Attributes {
			m[kv.Key] = kv.Value.String()
		}
		return m
	}
	for i, want := range []string{"CreateTask", "GetTask"} {
		sp := spans[i]
		if sp.Name != "store."+want || sp.SpanKind != trace.SpanKindClient || sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d: %s, kind %v, parent %v", i, sp.Name, sp.SpanKind, sp.Parent.SpanID())
		}
		if a := attrs(i); a["db.system.name"] != "sqlite" || a["db.operation.name"] != want {
			t.Errorf("span %s attributes %v", sp.Name, a)
		}
	}
	if a := attrs(1); a["error.type"] != "not_found" || spans[1].Status.Code.String() == "Error" {
		t.Errorf("a record not found: attributes %v, status %v (not a storage failure)", a, spans[1].Status)
	}
	if a := attrs(0); a["error.type"] != "" || task.ID == "" {
		t.Errorf("a create that worked: %v", a)
	}
}
