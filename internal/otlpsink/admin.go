package otlpsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/handoff-dev/handoff/internal/loopback"
)

// TraceResponse is the answer of GET /traces/{id}.
type TraceResponse struct {
	TraceID string `json:"trace_id"`
	// Spans are by start time.
	Spans []Span `json:"spans"`
	// DroppedSpans were over MaxSpansPerTrace.
	DroppedSpans int `json:"dropped_spans,omitempty"`
}

// errorResponse is the admin routes' error body.
type errorResponse struct {
	Error string `json:"error"`
}

// DefaultRecent is how many traces GET /traces lists without ?n.
const DefaultRecent = 20

// loopbackOnly serves h to loopback callers that name a loopback host (no
// DNS rebinding: see package loopback), and 403 to anyone else.
func loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := loopback.Check(r); err != nil {
			writeJSON(w, http.StatusForbidden, errorResponse{"the trace routes answer loopback callers only: " + err.Error()})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Sink) listTraces(w http.ResponseWriter, r *http.Request) {
	n := DefaultRecent
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 {
			writeJSON(w, http.StatusBadRequest, errorResponse{fmt.Sprintf("n=%q: want a positive number", q)})
			return
		}
		n = v
	}
	recent := s.Recent(n)
	if recent == nil {
		recent = []TraceSummary{}
	}
	writeJSON(w, http.StatusOK, recent)
}

func (s *Sink) getTrace(w http.ResponseWriter, r *http.Request) {
	id, err := ParseTraceID(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{err.Error()})
		return
	}
	s.mu.Lock()
	t := s.traces[id]
	var resp TraceResponse
	if t != nil {
		resp = TraceResponse{TraceID: id, Spans: byStart(t.spans), DroppedSpans: t.dropped}
	}
	s.mu.Unlock()
	if t == nil {
		writeJSON(w, http.StatusNotFound, errorResponse{fmt.Sprintf("no spans for trace %s (devstack keeps the last %d traces)", id, s.limits.MaxTraces)})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// ErrNoTrace is what FetchTrace's error is (errors.Is) when the sink
// keeps no span of the trace; its text is the sink's message.
var ErrNoTrace = errors.New("no spans for the trace")

type noTraceError string

func (e noTraceError) Error() string        { return string(e) }
func (e noTraceError) Is(target error) bool { return target == ErrNoTrace }

// FetchTrace asks the sink at base (its URL, e.g. http://127.0.0.1:7075)
// for a trace.
func FetchTrace(ctx context.Context, hc *http.Client, base, id string) (TraceResponse, error) {
	var t TraceResponse
	err := get(ctx, hc, base+"/traces/"+url.PathEscape(id), &t)
	return t, err
}

// FetchRecent asks the sink at base for its n most recent traces.
func FetchRecent(ctx context.Context, hc *http.Client, base string, n int) ([]TraceSummary, error) {
	var list []TraceSummary
	err := get(ctx, hc, base+"/traces?n="+strconv.Itoa(n), &list)
	return list, err
}

// MaxAnswerBytes bounds an answer FetchTrace or FetchRecent reads.
const MaxAnswerBytes = 64 << 20

func get(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the trace receiver: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("the trace receiver: %w", err)
	}
	if len(b) > MaxAnswerBytes {
		return fmt.Errorf("the trace receiver's answer is over %d bytes", MaxAnswerBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("the trace receiver answered %s", resp.Status)
		}
		if resp.StatusCode == http.StatusNotFound {
			return noTraceError(e.Error)
		}
		return errors.New(e.Error)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the trace receiver's answer: %w", err)
	}
	return nil
}
