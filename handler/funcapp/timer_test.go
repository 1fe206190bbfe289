package funcapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

// hostTimerInvocation is what the Functions host POSTs to /<function> for a
// timerTrigger binding named "timer": .NET timestamps with seven fraction
// digits and an offset, Last and LastUpdated as the host sends them before
// its schedule monitor has written a record (no offset), and the sys
// metadata (the trigger's own binding data is left out of Metadata).
const hostTimerInvocation = `{
  "Data": {
    "timer": {
      "Schedule": {"AdjustForDST": true},
      "ScheduleStatus": {
        "Last": "0001-01-01T00:00:00",
        "Next": "2025-03-14T09:00:00+00:00",
        "LastUpdated": "0001-01-01T00:00:00"
      },
      "IsPastDue": false
    }
  },
  "Metadata": {
    "sys": {"MethodName": "sweep", "UtcNow": "2025-03-14T09:00:00.0123456Z", "RandGuid": "5b6a2c1e-8f7d-4e0a-9d1b-2c3e4f5a6b7c"}
  }
}`

type invocationResult struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

func decodeResult(t *testing.T, body string) (invocationResult, map[string]json.RawMessage) {
	t.Helper()
	var res invocationResult
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	json.Unmarshal([]byte(body), &raw)
	return res, raw
}

func TestTimerInvocation(t *testing.T) {
	var got funcapp.TimerInfo
	var gotCtx context.Context
	h := funcapp.Timer("timer", func(ctx context.Context, info funcapp.TimerInfo) ([]string, error) {
		got, gotCtx = info, ctx
		return []string{"audit sweep: 2 delivered"}, nil
	})
	rec := do(t, funcapp.Wrap(h, funcapp.Config{}), "POST", "/sweep", strings.NewReader(hostTimerInvocation),
		map[string]string{"Content-Type": "application/json; charset=utf-8"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	res, raw := decodeResult(t, rec.Body.String())
	if len(res.Logs) != 1 || res.Logs[0] != "audit sweep: 2 delivered" {
		t.Errorf("Logs %q", res.Logs)
	}
	// The host reads exactly these three members.
	if string(raw["Outputs"]) != "{}" || string(raw["ReturnValue"]) != "null" || len(raw) != 3 {
		t.Errorf("response %s, want Outputs {} and ReturnValue null", rec.Body)
	}
	if gotCtx == nil {
		t.Fatal("run was not called")
	}
	if !got.Schedule.AdjustForDST || got.IsPastDue || got.ScheduleStatus == nil {
		t.Fatalf("TimerInfo %+v", got)
	}
	st := got.ScheduleStatus
	if !st.Last.IsZero() || !st.LastUpdated.IsZero() || !st.Next.Equal(time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("ScheduleStatus %+v", st)
	}
}

func TestTimerInfoVariants(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       funcapp.TimerInfo
	}{
		{
			"written record, past due",
			`{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2025-03-14T08:55:00.0070745+00:00","Next":"2025-03-14T09:00:00+00:00","LastUpdated":"2025-03-14T08:55:00.0070745+01:00"},"IsPastDue":true}`,
			funcapp.TimerInfo{Schedule: funcapp.TimerSchedule{AdjustForDST: true}, IsPastDue: true, ScheduleStatus: &funcapp.ScheduleStatus{
				Last:        time.Date(2025, 3, 14, 8, 55, 0, 7074500, time.UTC),
				Next:        time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC),
				LastUpdated: time.Date(2025, 3, 14, 7, 55, 0, 7074500, time.UTC),
			}},
		},
		{"useMonitor false", `{"Schedule":{"AdjustForDST":false},"ScheduleStatus":null,"IsPastDue":false}`, funcapp.TimerInfo{}},
		{"as a JSON string", `"{\"Schedule\":{\"AdjustForDST\":true},\"IsPastDue\":true}"`, funcapp.TimerInfo{Schedule: funcapp.TimerSchedule{AdjustForDST: true}, IsPastDue: true}},
		{"camel case", `{"schedule":{"adjustForDST":true},"scheduleStatus":{"last":"","next":"2025-03-14T09:00:00Z"},"isPastDue":true}`,
			funcapp.TimerInfo{Schedule: funcapp.TimerSchedule{AdjustForDST: true}, IsPastDue: true, ScheduleStatus: &funcapp.ScheduleStatus{Next: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got funcapp.TimerInfo
			h := funcapp.Timer("timer", func(_ context.Context, info funcapp.TimerInfo) ([]string, error) {
				got = info
				return nil, nil
			})
			rec := do(t, h, "POST", "/sweep", strings.NewReader(`{"Data":{"timer":`+tc.data+`},"Metadata":{}}`), nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if res, _ := decodeResult(t, rec.Body.String()); res.Logs == nil {
				t.Errorf("Logs is null, want []: %s", rec.Body)
			}
			if got.Schedule != tc.want.Schedule || got.IsPastDue != tc.want.IsPastDue || (got.ScheduleStatus == nil) != (tc.want.ScheduleStatus == nil) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if w := tc.want.ScheduleStatus; w != nil {
				g := got.ScheduleStatus
				if !g.Last.Equal(w.Last) || !g.Next.Equal(w.Next) || !g.LastUpdated.Equal(w.LastUpdated) {
					t.Errorf("ScheduleStatus %+v, want %+v", *g, *w)
				}
			}
		})
	}
}

func TestTimerError(t *testing.T) {
	h := funcapp.Timer("timer", func(context.Context, funcapp.TimerInfo) ([]string, error) {
		return []string{"audit sweep: 0 delivered"}, errors.New("store unavailable")
	})
	rec := do(t, h, "POST", "/sweep", strings.NewReader(hostTimerInvocation), nil)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	res, raw := decodeResult(t, rec.Body.String())
	if len(res.Logs) != 2 || res.Logs[0] != "audit sweep: 0 delivered" || res.Logs[1] != "error: store unavailable" {
		t.Errorf("Logs %q", res.Logs)
	}
	if string(raw["Outputs"]) != "{}" || string(raw["ReturnValue"]) != "null" {
		t.Errorf("response %s", rec.Body)
	}
}

func TestTimerRefusesWhatIsNotAnInvocation(t *testing.T) {
	called := false
	h := funcapp.Wrap(funcapp.Timer("timer", func(context.Context, funcapp.TimerInfo) ([]string, error) {
		called = true
		return nil, nil
	}), funcapp.Config{})
	big := `{"Data":{"timer":{}},"Metadata":{"pad":"` + strings.Repeat("x", funcapp.DefaultMaxBodyBytes) + `"}}`
	for _, tc := range []struct {
		name, method, body string
		status             int
	}{
		{"GET", "GET", "", http.StatusMethodNotAllowed},
		{"PUT", "PUT", hostTimerInvocation, http.StatusMethodNotAllowed},
		{"empty body", "POST", "", http.StatusBadRequest},
		{"not JSON", "POST", "{", http.StatusBadRequest},
		{"an array", "POST", `[]`, http.StatusBadRequest},
		{"two objects", "POST", hostTimerInvocation + hostTimerInvocation, http.StatusBadRequest},
		{"no Data", "POST", `{"Metadata":{}}`, http.StatusBadRequest},
		{"another binding", "POST", `{"Data":{"myTimer":{"IsPastDue":false}}}`, http.StatusBadRequest},
		{"null binding", "POST", `{"Data":{"timer":null}}`, http.StatusBadRequest},
		{"binding not an object", "POST", `{"Data":{"timer":42}}`, http.StatusBadRequest},
		{"string not JSON", "POST", `{"Data":{"timer":"nope"}}`, http.StatusBadRequest},
		{"wrong type", "POST", `{"Data":{"timer":{"IsPastDue":"yes"}}}`, http.StatusBadRequest},
		{"bad time", "POST", `{"Data":{"timer":{"ScheduleStatus":{"Next":"14/03/2025 09:00"}}}}`, http.StatusBadRequest},
		{"too large", "POST", big, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called = false
			rec := do(t, h, tc.method, "/sweep", strings.NewReader(tc.body), nil)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %q: %s; want %d problem+json", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.status)
			}
			if tc.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "POST" {
				t.Errorf("Allow %q", rec.Header().Get("Allow"))
			}
			if called {
				t.Error("run was called")
			}
		})
	}
	t.Run("too large without Content-Length", func(t *testing.T) {
		h := funcapp.Timer("timer", func(context.Context, funcapp.TimerInfo) ([]string, error) { return nil, nil })
		r := strings.NewReader(big)
		req, _ := http.NewRequest("POST", "/sweep", struct{ *strings.Reader }{r})
		req.ContentLength = -1
		rec := recordTo(h, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

func recordTo(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
