package funcapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/handoff-dev/handoff/handler/problem"
)

// TimerInfo is what the Functions host passes a timerTrigger function: the
// value of its binding in the invocation's Data.
type TimerInfo struct {
	Schedule TimerSchedule `json:"Schedule"`
	// ScheduleStatus is nil when the binding's useMonitor is false (and for
	// schedules that fire more often than once a minute, where the host
	// turns monitoring off).
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"`
	// IsPastDue is true when the host runs an occurrence it missed (the app
	// was down when it fell due).
	IsPastDue bool `json:"IsPastDue"`
}

// TimerSchedule describes the schedule.
type TimerSchedule struct {
	AdjustForDST bool `json:"AdjustForDST"`
}

// ScheduleStatus is the host's record of the schedule, as it stood when
// the invocation began.
type ScheduleStatus struct {
	// Last is when the previous scheduled run began; the zero time if the
	// host has no record of one.
	Last time.Time
	// Next is the occurrence this run is for (the host updates the record
	// after the run).
	Next time.Time
	// LastUpdated is when the record was last written; zero if never.
	LastUpdated time.Time
}

// UnmarshalJSON reads the host's timestamps, which are ISO 8601 with an
// offset ("2024-05-01T12:00:00.0012345+00:00") except for a record the host
// has not written yet, which it sends without one ("0001-01-01T00:00:00").
// A time without an offset is read as UTC; null or "" is the zero time.
func (s *ScheduleStatus) UnmarshalJSON(b []byte) error {
	var raw struct {
		Last, Next, LastUpdated *string
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		in   *string
		out  *time.Time
	}{{"Last", raw.Last, &s.Last}, {"Next", raw.Next, &s.Next}, {"LastUpdated", raw.LastUpdated, &s.LastUpdated}} {
		*f.out = time.Time{}
		if f.in == nil || *f.in == "" {
			continue
		}
		t, err := parseHostTime(*f.in)
		if err != nil {
			return fmt.Errorf("ScheduleStatus.%s: %w", f.name, err)
		}
		*f.out = t
	}
	return nil
}

func parseHostTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	// No offset: .NET's DateTime of unspecified kind (its fraction, up to
	// seven digits, is accepted after the seconds).
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
}

// invocationRequest is the body the host POSTs for a non-HTTP trigger.
type invocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// invocationResponse is what the host expects back.
type invocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Timer serves a timerTrigger function to the Functions host. binding is
// the trigger binding's name in function.json ("timer" for
// {"type":"timerTrigger","name":"timer",...}).
//
// For a function that is not HTTP-triggered, the host POSTs the invocation
// to the handler at "/" + the function's name (its folder), outside the
// route prefix: {"Data":{"<binding>":<TimerInfo>},"Metadata":{...}}. So
// mount it at that path, e.g. mux.Handle("/sweep", funcapp.Timer("timer",
// run)) for functions/<app>/sweep. That path must not collide with an HTTP
// route: HTTP routes live under /api/ (host.json's routePrefix), so no
// function may be named "api". The host never forwards outside requests to
// it: a function without an httpTrigger is not reachable over HTTP through
// the host.
//
// Timer answers a method other than POST 405, a malformed invocation 400
// and one over DefaultMaxBodyBytes 413 (problem+json). Otherwise it calls
// run with the request's context (cancelled if the host gives up) and
// answers 200 {"Outputs":{},"Logs":logs,"ReturnValue":null}: the host logs
// each line of Logs as the function's log. If run returns an error it
// answers 500 with the same body, Logs ending "error: <err>", and logs the
// error with slog.Default(): the host counts the invocation as failed and,
// since it reads no body from a failed invocation, the error reaches its
// logs through the handler's own output.
//
// Each invocation runs in a server span named after the function (the
// path without its slash), with faas.trigger timer and faas.invocation_id;
// it continues a traceparent the host sent, else it starts a trace. opts
// name other providers than the global ones.
func Timer(binding string, run func(ctx context.Context, info TimerInfo) (logs []string, err error), opts ...Option) http.Handler {
	ins := newInstruments(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Error(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; the Functions host POSTs timer invocations")
			return
		}
		info, status, err := decodeTimerInvocation(w, r, binding)
		if err != nil {
			problem.Error(w, status, err.Error())
			return
		}
		ctx, span := ins.startTimer(r)
		defer span.End()
		logs, err := run(ctx, info)
		resp := invocationResponse{Outputs: map[string]any{}, Logs: logs}
		if resp.Logs == nil {
			resp.Logs = []string{}
		}
		status = http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			resp.Logs = append(resp.Logs, "error: "+err.Error())
			span.SetStatus(codes.Error, err.Error())
			slog.Default().ErrorContext(ctx, "funcapp: timer function failed", "path", r.URL.Path, "binding", binding, "error", err.Error())
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// decodeTimerInvocation reads the host's invocation and the binding's
// TimerInfo; on failure it returns the status to answer.
func decodeTimerInvocation(w http.ResponseWriter, r *http.Request, binding string) (TimerInfo, int, error) {
	if r.ContentLength > DefaultMaxBodyBytes {
		return TimerInfo{}, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", DefaultMaxBodyBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, DefaultMaxBodyBytes))
	var req invocationRequest
	if err := dec.Decode(&req); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return TimerInfo{}, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", DefaultMaxBodyBytes)
		}
		return TimerInfo{}, http.StatusBadRequest, fmt.Errorf("the invocation is not a JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return TimerInfo{}, http.StatusBadRequest, errors.New("the invocation has data after its JSON object")
	}
	raw, ok := req.Data[binding]
	if !ok {
		for k, v := range req.Data { // the host keeps function.json's spelling; be lenient on case
			if strings.EqualFold(k, binding) {
				raw, ok = v, true
				break
			}
		}
	}
	raw = bytes.TrimSpace(raw)
	if !ok || len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return TimerInfo{}, http.StatusBadRequest, fmt.Errorf("the invocation has no Data.%s (the timerTrigger binding's name in function.json)", binding)
	}
	// The host sends the binding's value as a JSON object, or as a string
	// holding one when it cannot convert the value to an object.
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return TimerInfo{}, http.StatusBadRequest, fmt.Errorf("the invocation's Data.%s: %v", binding, err)
		}
		raw = []byte(s)
	}
	var info TimerInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return TimerInfo{}, http.StatusBadRequest, fmt.Errorf("the invocation's Data.%s is not timer information: %v", binding, err)
	}
	return info, 0, nil
}
