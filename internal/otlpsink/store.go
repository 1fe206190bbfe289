package otlpsink

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// store keeps req's spans. Every span is checked before any is kept, so a
// request with one malformed span stores nothing.
func (s *Sink) store(req *collectortrace.ExportTraceServiceRequest) error {
	var spans []Span
	for _, rs := range req.GetResourceSpans() {
		service := serviceName(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, p := range ss.GetSpans() {
				sp, err := convert(service, p)
				if err != nil {
					return &requestError{http.StatusBadRequest, err.Error()}
				}
				spans = append(spans, sp)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		s.keep(sp)
	}
	return nil
}

// keep adds sp to its trace, starting the trace (and evicting the oldest
// one beyond MaxTraces) if it is new. s.mu is held.
func (s *Sink) keep(sp Span) {
	t := s.traces[sp.TraceID]
	if t == nil {
		if len(s.order) >= s.limits.MaxTraces {
			delete(s.traces, s.order[0])
			s.order = s.order[1:]
			s.counts.EvictedTraces++
		}
		t = &kept{spans: map[string]Span{}}
		s.traces[sp.TraceID] = t
		s.order = append(s.order, sp.TraceID)
	}
	if _, again := t.spans[sp.SpanID]; !again && len(t.spans) >= s.limits.MaxSpansPerTrace {
		t.dropped++
		s.counts.DroppedSpans++
		return
	}
	t.spans[sp.SpanID] = sp
	s.counts.Spans++
}

// Trace is the kept spans of the trace id (hex, any case), by start time;
// nil when none are kept.
func (s *Sink) Trace(id string) []Span {
	id, err := ParseTraceID(id)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.traces[id]
	if t == nil {
		return nil
	}
	return byStart(t.spans)
}

// byStart is spans ordered by start time, then span id.
func byStart(m map[string]Span) []Span {
	out := make([]Span, 0, len(m))
	for _, sp := range m {
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	return out
}

// TraceSummary describes a kept trace.
type TraceSummary struct {
	TraceID string `json:"trace_id"`
	// Root is the earliest span whose parent was not received (the
	// trace's root, or the first orphan); Service is its app.
	Root    string    `json:"root"`
	Service string    `json:"service"`
	Start   time.Time `json:"start"`
	Spans   int       `json:"spans"`
	// DroppedSpans were over MaxSpansPerTrace.
	DroppedSpans int `json:"dropped_spans,omitempty"`
}

// Recent summarizes the n traces that arrived last, newest first.
func (s *Sink) Recent(n int) []TraceSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TraceSummary
	for i := len(s.order) - 1; i >= 0 && len(out) < n; i-- {
		t := s.traces[s.order[i]]
		spans := byStart(t.spans)
		root := spans[0]
		for _, sp := range spans {
			if _, ok := t.spans[sp.ParentSpanID]; !ok {
				root = sp
				break
			}
		}
		out = append(out, TraceSummary{
			TraceID: s.order[i], Root: root.Name, Service: root.Service, Start: root.Start,
			Spans: len(spans), DroppedSpans: t.dropped,
		})
	}
	return out
}
