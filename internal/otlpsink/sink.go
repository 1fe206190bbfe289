package otlpsink

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	collectorlogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// Limits bound what a [Sink] keeps and accepts.
type Limits struct {
	// MaxTraces is how many traces are kept; a new trace beyond it
	// evicts the one that arrived first.
	MaxTraces int
	// MaxSpansPerTrace is how many spans one trace keeps; later spans of
	// it are dropped (and counted in [Counts].DroppedSpans).
	MaxSpansPerTrace int
	// MaxBodyBytes bounds a request's body, and its size once
	// decompressed: a larger one is refused with 413.
	MaxBodyBytes int64
}

// Default limits: far more than a local session makes, and a bound on
// memory (at most DefaultMaxTraces × DefaultMaxSpansPerTrace spans).
const (
	DefaultMaxTraces        = 1000
	DefaultMaxSpansPerTrace = 200
	// DefaultMaxBodyBytes is well above what one batch of the SDK's
	// (at most 512 spans) encodes to.
	DefaultMaxBodyBytes = 8 << 20
)

// DefaultLimits are the Default… constants.
func DefaultLimits() Limits {
	return Limits{MaxTraces: DefaultMaxTraces, MaxSpansPerTrace: DefaultMaxSpansPerTrace, MaxBodyBytes: DefaultMaxBodyBytes}
}

// Counts are what a Sink received since it started.
type Counts struct {
	Spans, DroppedSpans, EvictedTraces int
	MetricPoints, LogRecords           int
}

// Sink receives OTLP/HTTP and keeps spans; see the package documentation
// for its routes. Its methods are safe for concurrent use.
type Sink struct {
	limits Limits
	mux    *http.ServeMux

	mu     sync.Mutex
	traces map[string]*kept // by trace id
	order  []string         // trace ids, in order of arrival
	counts Counts
}

// kept is one trace's spans, by span id: a span sent twice (a retried
// export) is kept once.
type kept struct {
	spans   map[string]Span
	dropped int
}

// New returns a Sink with limits; zero fields take the defaults.
func New(limits Limits) *Sink {
	d := DefaultLimits()
	if limits.MaxTraces <= 0 {
		limits.MaxTraces = d.MaxTraces
	}
	if limits.MaxSpansPerTrace <= 0 {
		limits.MaxSpansPerTrace = d.MaxSpansPerTrace
	}
	if limits.MaxBodyBytes <= 0 {
		limits.MaxBodyBytes = d.MaxBodyBytes
	}
	s := &Sink{limits: limits, mux: http.NewServeMux(), traces: map[string]*kept{}}
	s.mux.HandleFunc("POST /v1/traces", s.receiveTraces)
	s.mux.HandleFunc("POST /v1/metrics", s.receiveMetrics)
	s.mux.HandleFunc("POST /v1/logs", s.receiveLogs)
	s.mux.HandleFunc("GET /traces", loopbackOnly(s.listTraces))
	s.mux.HandleFunc("GET /traces/{id}", loopbackOnly(s.getTrace))
	return s
}

// Limits are the sink's limits, defaults filled in.
func (s *Sink) Limits() Limits { return s.limits }

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Counts are the sink's counts so far.
func (s *Sink) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

const contentTypeProtobuf = "application/x-protobuf"

// requestError is a refused request: its status and why.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// decode reads r's body (within the body limit, gunzipped if need be) into
// m, or says why it cannot.
func (s *Sink) decode(w http.ResponseWriter, r *http.Request, m proto.Message) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err == nil && mt == contentTypeProtobuf:
	case err == nil && mt == "application/json":
		return &requestError{http.StatusUnsupportedMediaType, "OTLP/JSON is not accepted here: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}
	default:
		return &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want %s", r.Header.Get("Content-Type"), contentTypeProtobuf)}
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, s.limits.MaxBodyBytes))
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return s.readError(err)
		}
		// The limit holds for the decompressed bytes too: no gzip bomb.
		body = io.LimitReader(gz, s.limits.MaxBodyBytes+1)
	default:
		return &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q: want gzip or none", enc)}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return s.readError(err)
	}
	if int64(len(b)) > s.limits.MaxBodyBytes {
		return s.tooLarge()
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return &requestError{http.StatusBadRequest, fmt.Sprintf("the body is not an OTLP %s: %v", m.ProtoReflect().Descriptor().Name(), err)}
	}
	return nil
}

func (s *Sink) readError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return s.tooLarge()
	}
	return &requestError{http.StatusBadRequest, "reading the body: " + err.Error()}
}

func (s *Sink) tooLarge() error {
	return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", s.limits.MaxBodyBytes)}
}

// answer writes err's status and message, or resp on success.
func answer(w http.ResponseWriter, resp proto.Message, err error) {
	if re, ok := errors.AsType[*requestError](err); ok {
		http.Error(w, re.msg, re.status)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeProtobuf)
	w.Write(b)
}

func (s *Sink) receiveTraces(w http.ResponseWriter, r *http.Request) {
	var req collectortrace.ExportTraceServiceRequest
	err := s.decode(w, r, &req)
	if err == nil {
		err = s.store(&req)
	}
	answer(w, &collectortrace.ExportTraceServiceResponse{}, err)
}

func (s *Sink) receiveMetrics(w http.ResponseWriter, r *http.Request) {
	var req collectormetrics.ExportMetricsServiceRequest
	err := s.decode(w, r, &req)
	if err == nil {
		n := 0
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					n += len(m.GetGauge().GetDataPoints()) + len(m.GetSum().GetDataPoints()) +
						len(m.GetHistogram().GetDataPoints()) + len(m.GetExponentialHistogram().GetDataPoints()) +
						len(m.GetSummary().GetDataPoints())
				}
			}
		}
		s.mu.Lock()
		s.counts.MetricPoints += n
		s.mu.Unlock()
	}
	answer(w, &collectormetrics.ExportMetricsServiceResponse{}, err)
}

func (s *Sink) receiveLogs(w http.ResponseWriter, r *http.Request) {
	var req collectorlogs.ExportLogsServiceRequest
	err := s.decode(w, r, &req)
	if err == nil {
		n := 0
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += len(sl.GetLogRecords())
			}
		}
		s.mu.Lock()
		s.counts.LogRecords += n
		s.mu.Unlock()
	}
	answer(w, &collectorlogs.ExportLogsServiceResponse{}, err)
}

// Timeouts of [Sink.Serve]'s server.
const (
	// ReadHeaderTimeout bounds a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// ShutdownTimeout bounds the wait for requests in flight once ctx ends.
	ShutdownTimeout = 5 * time.Second
)

// Serve serves the sink on l until ctx ends, then shuts down (requests in
// flight get ShutdownTimeout) and returns nil.
func (s *Sink) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: ReadHeaderTimeout}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return fmt.Errorf("the trace receiver: %w", err)
}
