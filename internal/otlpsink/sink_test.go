package otlpsink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	collectorlogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// id is an n-byte id whose bytes are all b.
func id(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func tid(b byte) []byte { return id(16, b) }
func sid(b byte) []byte { return id(8, b) }

// request is an export of spans from service.
func request(service string, spans ...*tracepb.Span) []byte {
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: service}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

func span(trace, spanID byte, name string) *tracepb.Span {
	return &tracepb.Span{TraceId: tid(trace), SpanId: sid(spanID), Name: name, StartTimeUnixNano: uint64(spanID) * 1000, EndTimeUnixNano: uint64(spanID)*1000 + 500}
}

func post(t *testing.T, h http.Handler, path, contentType string, body []byte, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const protobuf = "application/x-protobuf"

func TestSuccessAnswersTheEmptyResponse(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{})
	w := post(t, s, "/v1/traces", protobuf, request("task", span(1, 1, "a")))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != protobuf {
		t.Fatalf("answered %d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var resp collectortrace.ExportTraceServiceResponse
	if err := proto.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.PartialSuccess != nil {
		t.Errorf("response = %v (%v), want an empty ExportTraceServiceResponse", &resp, err)
	}
	if got := s.Trace(hex.EncodeToString(tid(1))); len(got) != 1 || got[0].Service != "task" || got[0].Name != "a" {
		t.Errorf("kept %+v", got)
	}
}

func TestOldestTraceIsEvictedBeyondMaxTraces(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{MaxTraces: 2})
	for tr := byte(1); tr <= 3; tr++ {
		if w := post(t, s, "/v1/traces", protobuf, request("task", span(tr, 1, fmt.Sprint("trace ", tr)))); w.Code != http.StatusOK {
			t.Fatalf("trace %d: %d %s", tr, w.Code, w.Body)
		}
	}
	if s.Trace(hex.EncodeToString(tid(1))) != nil {
		t.Error("the first trace is still kept beyond MaxTraces 2")
	}
	for tr := byte(2); tr <= 3; tr++ {
		if s.Trace(hex.EncodeToString(tid(tr))) == nil {
			t.Errorf("trace %d was evicted", tr)
		}
	}
	if c := s.Counts(); c.EvictedTraces != 1 || c.Spans != 3 {
		t.Errorf("counts = %+v, want 1 evicted of 3 spans", c)
	}
	// A span of a kept trace evicts nothing.
	post(t, s, "/v1/traces", protobuf, request("task", span(2, 2, "more")))
	if s.Counts().EvictedTraces != 1 || len(s.Trace(hex.EncodeToString(tid(2)))) != 2 {
		t.Errorf("a span of a kept trace evicted one: %+v", s.Counts())
	}
}

func TestSpansBeyondMaxSpansPerTraceAreDropped(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{MaxSpansPerTrace: 2})
	post(t, s, "/v1/traces", protobuf, request("task", span(1, 1, "a"), span(1, 2, "b"), span(1, 3, "c")))
	// The same span again (a retried export) is kept once, even at the limit.
	post(t, s, "/v1/traces", protobuf, request("task", span(1, 2, "b")))
	got := s.Trace(hex.EncodeToString(tid(1)))
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Errorf("kept %+v, want a and b", got)
	}
	if c := s.Counts(); c.DroppedSpans != 1 {
		t.Errorf("DroppedSpans = %d, want 1", c.DroppedSpans)
	}
	if r := s.Recent(1); len(r) != 1 || r[0].DroppedSpans != 1 || r[0].Spans != 2 {
		t.Errorf("Recent = %+v, want 2 spans and 1 dropped", r)
	}
}

func TestBadInputIsRefusedAndNothingStored(t *testing.T) {
	const limit = 512
	valid := request("task", span(1, 1, "a"))
	var bomb bytes.Buffer
	gz := gzip.NewWriter(&bomb)
	gz.Write(bytes.Repeat(valid, 2*limit/len(valid)+1)) // small compressed, over the limit inflated
	gz.Close()
	var notGzip bytes.Buffer
	notGzip.Write(valid)
	badParent := span(1, 2, "b")
	badParent.ParentSpanId = []byte{1, 2, 3}
	for _, c := range []struct {
		name, path, contentType string
		body                    []byte
		header                  []string
		want                    int
	}{
		{"garbage", "/v1/traces", protobuf, []byte("this is not protobuf \xff\xff\xff"), nil, 400},
		{"a short span id beside a valid span", "/v1/traces", protobuf, request("task", span(1, 1, "a"), &tracepb.Span{TraceId: tid(1), SpanId: []byte{9}}), nil, 400},
		{"a zero trace id", "/v1/traces", protobuf, request("task", &tracepb.Span{TraceId: id(16, 0), SpanId: sid(1)}), nil, 400},
		{"a short parent id", "/v1/traces", protobuf, request("task", span(1, 1, "a"), badParent), nil, 400},
		{"no content type", "/v1/traces", "", valid, nil, 415},
		{"text/plain", "/v1/traces", "text/plain", valid, nil, 415},
		{"OTLP/JSON", "/v1/traces", "application/json", []byte(`{"resourceSpans":[]}`), nil, 415},
		{"an unknown encoding", "/v1/traces", protobuf, valid, []string{"Content-Encoding", "br"}, 415},
		{"gzip that is not", "/v1/traces", protobuf, notGzip.Bytes(), []string{"Content-Encoding", "gzip"}, 400},
		{"over the body limit", "/v1/traces", protobuf, append(valid, make([]byte, limit)...), nil, 413},
		{"a gzip bomb", "/v1/traces", protobuf, bomb.Bytes(), []string{"Content-Encoding", "gzip"}, 413},
		{"garbage metrics", "/v1/metrics", protobuf, []byte("\xff\xff"), nil, 400},
		{"oversize logs", "/v1/logs", protobuf, make([]byte, limit+1), nil, 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := otlpsink.New(otlpsink.Limits{MaxBodyBytes: limit})
			if len(bomb.Bytes()) >= limit {
				t.Fatalf("the bomb is %d bytes compressed: not under the limit", bomb.Len())
			}
			w := post(t, s, c.path, c.contentType, c.body, c.header...)
			if w.Code != c.want {
				t.Errorf("answered %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), c.want)
			}
			if n := s.Counts(); n != (otlpsink.Counts{}) || len(s.Recent(10)) != 0 {
				t.Errorf("stored %+v", n)
			}
		})
	}
}

func TestWithinTheLimitIsAccepted(t *testing.T) {
	valid := request("task", span(1, 1, "a"))
	s := otlpsink.New(otlpsink.Limits{MaxBodyBytes: int64(len(valid))})
	if w := post(t, s, "/v1/traces", protobuf, valid); w.Code != http.StatusOK {
		t.Fatalf("a body of exactly MaxBodyBytes answered %d: %s", w.Code, w.Body)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(request("task", span(2, 1, "b")))
	zw.Close()
	if w := post(t, s, "/v1/traces", protobuf, gz.Bytes(), "Content-Encoding", "gzip"); w.Code != http.StatusOK {
		t.Fatalf("gzip answered %d: %s", w.Code, w.Body)
	}
	if len(s.Recent(10)) != 2 {
		t.Errorf("kept %+v, want 2 traces", s.Recent(10))
	}
}

func TestLogsAreCountedAndDiscarded(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{})
	b, _ := proto.Marshal(&collectorlogs.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{}, {}}}},
	}}})
	if w := post(t, s, "/v1/logs", protobuf, b); w.Code != http.StatusOK {
		t.Fatalf("logs answered %d: %s", w.Code, w.Body)
	}
	if c := s.Counts(); c.LogRecords != 2 || c.Spans != 0 {
		t.Errorf("counts = %+v, want 2 log records", c)
	}
}

func get(t *testing.T, h http.Handler, path, remote, host string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr, r.Host = remote, host
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestTraceRoutes(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{MaxTraces: 7})
	child := span(1, 2, "child")
	child.ParentSpanId = sid(1)
	post(t, s, "/v1/traces", protobuf, request("task", span(1, 1, "root"), child))
	post(t, s, "/v1/traces", protobuf, request("audit", span(2, 1, "other")))
	const local, host = "127.0.0.1:5555", "127.0.0.1:7075"
	id1 := strings.ToUpper(hex.EncodeToString(tid(1))) // any case

	w := get(t, s, "/traces/"+id1, local, host)
	var tr otlpsink.TraceResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &tr) != nil {
		t.Fatalf("GET /traces/{id} = %d %s", w.Code, w.Body)
	}
	if len(tr.Spans) != 2 || tr.Spans[0].Name != "root" || tr.Spans[1].ParentSpanID != hex.EncodeToString(sid(1)) || tr.TraceID != strings.ToLower(id1) {
		t.Errorf("trace = %+v", tr)
	}

	w = get(t, s, "/traces?n=1", "[::1]:5555", "localhost:7075")
	var list []otlpsink.TraceSummary
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 1 || list[0].Root != "other" || list[0].Service != "audit" {
		t.Errorf("GET /traces?n=1 = %d %s", w.Code, w.Body)
	}

	unknown := hex.EncodeToString(tid(9))
	for _, c := range []struct {
		path, remote, host string
		want               int
		body               string
	}{
		{"/traces/" + unknown, local, host, 404, "no spans for trace " + unknown + " (devstack keeps the last 7 traces)"},
		{"/traces/xyz", local, host, 400, "is not a trace id"},
		{"/traces/" + strings.Repeat("0", 32), local, host, 400, "all-zero"},
		{"/traces?n=0", local, host, 400, "positive"},
		{"/traces/" + id1, "192.0.2.1:5555", host, 403, "loopback"},
		{"/traces", "10.0.0.1:5555", host, 403, "loopback"},
		{"/traces/" + id1, local, "rebound.example:7075", 403, "loopback"},
	} {
		w := get(t, s, c.path, c.remote, c.host)
		if w.Code != c.want || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("GET %s from %s (Host %s) = %d %s, want %d with %q", c.path, c.remote, c.host, w.Code, w.Body, c.want, c.body)
		}
	}
}

func TestFetchTraceAndRecent(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	post(t, s, "/v1/traces", protobuf, request("task", span(1, 1, "root")))
	tr, err := otlpsink.FetchTrace(t.Context(), srv.Client(), srv.URL, hex.EncodeToString(tid(1)))
	if err != nil || len(tr.Spans) != 1 || tr.Spans[0].Name != "root" {
		t.Errorf("FetchTrace = %+v, %v", tr, err)
	}
	_, err = otlpsink.FetchTrace(t.Context(), srv.Client(), srv.URL, hex.EncodeToString(tid(2)))
	if !errors.Is(err, otlpsink.ErrNoTrace) || !strings.HasPrefix(err.Error(), "no spans for trace ") {
		t.Errorf("an unknown trace: %v, want ErrNoTrace with the sink's message", err)
	}
	list, err := otlpsink.FetchRecent(t.Context(), srv.Client(), srv.URL, 5)
	if err != nil || len(list) != 1 || list[0].Spans != 1 {
		t.Errorf("FetchRecent = %+v, %v", list, err)
	}
	resp, _ := http.Get(srv.URL + "/nothing")
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("an unknown route answered %d", resp.StatusCode)
		}
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := otlpsink.New(otlpsink.Limits{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	resp, err := http.Post("http://"+l.Addr().String()+"/v1/traces", protobuf, bytes.NewReader(request("task", span(1, 1, "a"))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(s.Recent(1)) != 1 {
		t.Fatalf("served: %d, kept %v", resp.StatusCode, s.Recent(1))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after its context ended, want nil", err)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("the port still answers")
	}
}

func TestListDefaultsToDefaultRecent(t *testing.T) {
	s := otlpsink.New(otlpsink.Limits{})
	for tr := byte(1); tr <= otlpsink.DefaultRecent+5; tr++ {
		post(t, s, "/v1/traces", protobuf, request("task", span(tr, 1, fmt.Sprint("trace ", tr))))
	}
	var list []otlpsink.TraceSummary
	w := get(t, s, "/traces", "127.0.0.1:5555", "127.0.0.1:7075")
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != otlpsink.DefaultRecent || list[0].Root != fmt.Sprint("trace ", otlpsink.DefaultRecent+5) {
		t.Errorf("GET /traces listed %d (%v), want the %d newest, newest first", len(list), err, otlpsink.DefaultRecent)
	}
}

// A receiver (or something else on its port) that answers without end is
// cut off at MaxAnswerBytes.
func TestFetchRefusesAnAnswerOverTheLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Valid JSON, once whole: leading spaces and an empty list.
		w.Write(bytes.Repeat([]byte(" "), otlpsink.MaxAnswerBytes))
		w.Write([]byte("[]"))
	}))
	defer srv.Close()
	_, err := otlpsink.FetchRecent(t.Context(), srv.Client(), srv.URL, 1)
	if err == nil || !strings.Contains(err.Error(), "answer is over") {
		t.Errorf("FetchRecent = %v, want the answer refused as over the limit", err)
	}
}
