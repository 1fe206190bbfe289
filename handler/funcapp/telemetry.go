package funcapp

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the OpenTelemetry instrumentation scope of this package's
// spans and metrics.
const ScopeName = "github.com/handoff-dev/handoff/handler/funcapp"

// InvocationIDHeader is the header in which the Functions host names each
// invocation (DefaultHttpWorkerService.cs, AddHeaders): spans record it as
// faas.invocation_id, so a host log line and a handler span can be matched.
const InvocationIDHeader = "X-Azure-Functions-InvocationId"

// requestDurationBuckets are the semantic conventions' advised bucket
// boundaries of http.server.request.duration, in seconds.
var requestDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Option sets where a [Router] or [Timer] reports its spans and metrics.
type Option func(*options)

type options struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider reports spans to tp instead of the global provider
// (otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithMeterProvider reports metrics to mp instead of the global provider
// (otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// instruments are what a Router or Timer reports with, made once.
type instruments struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
}

func newInstruments(opts []Option) *instruments {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	meter := o.mp.Meter(ScopeName)
	duration, err := meter.Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP server requests, by route and status."),
		metric.WithExplicitBucketBoundaries(requestDurationBuckets...))
	if err != nil {
		otel.Handle(err) // a no-op instrument is returned with the error
	}
	return &instruments{tracer: o.tp.Tracer(ScopeName), duration: duration}
}

// Instrument wraps h, the handler of one route (method and pattern as
// function.json declares it), in W3C Trace Context: the request continues
// the trace its traceparent header names (from the client, or from the
// Functions host), or starts one, in a server span named "METHOD pattern"
// with http.route, faas.invocation_id (the host's
// X-Azure-Functions-InvocationId) and the response status; and it records
// http.server.request.duration by method, route and status. h and the log
// lines it writes with the request's context ([NewLogHandler]) see the
// span. [Router] instruments every route it serves with it.
//
// It extracts with the global propagator (otel.SetTextMapPropagator; an
// app sets propagation.TraceContext{} once in main). With the global no-op
// providers (no SDK installed), the span is the incoming one passed
// through and nothing is measured: the cost is the header parse and one
// context, no response-writer wrapper.
//
// It is a thin middleware on the OpenTelemetry API rather than otelhttp's
// handler: with no-op providers otelhttp still wraps the response writer
// and body, builds its attribute sets and reads the clock on every request
// (internal/libtest/funcapp's BenchmarkMiddleware measures both).
func Instrument(method, pattern string, h http.Handler, opts ...Option) http.Handler {
	return newInstruments(opts).instrument(method, pattern, h)
}

func (ins *instruments) instrument(method, pattern string, h http.Handler) http.Handler {
	method = strings.ToUpper(method)
	name := method + " " + pattern
	base := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(pattern)}
	start := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(append(base, semconv.FaaSTriggerHTTP)...)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := ins.tracer.Start(ctx, name, start...)
		defer span.End()
		recording, metered := span.IsRecording(), ins.duration.Enabled(ctx)
		if !recording && !metered {
			h.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if id := r.Header.Get(InvocationIDHeader); id != "" && recording {
			span.SetAttributes(semconv.FaaSInvocationID(id))
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if recording {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= 500 {
				// Server spans are errors for 5xx only (semantic conventions).
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
		if metered {
			ins.duration.Record(ctx, time.Since(began).Seconds(),
				metric.WithAttributes(append(base, semconv.HTTPResponseStatusCode(status))...))
		}
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer's Flush and
// deadlines.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// startTimer starts the span of a timer invocation, named by the function
// (the request's path without its slash).
func (ins *instruments) startTimer(r *http.Request) (context.Context, trace.Span) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	fn := strings.TrimPrefix(r.URL.Path, "/")
	ctx, span := ins.tracer.Start(ctx, fn, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.FaaSTriggerTimer))
	if id := r.Header.Get(InvocationIDHeader); id != "" && span.IsRecording() {
		span.SetAttributes(semconv.FaaSInvocationID(id))
	}
	return ctx, span
}

// WithTraceContext wraps h so that every record logged with a context
// holding a valid span (the ctx-taking methods: InfoContext, ...) carries
// trace_id and span_id, the W3C ids in lowercase hex, so that one
// request's lines can be found across apps. [NewLogHandler] includes it.
// The ids are added to the record, so a logger's groups (WithGroup) hold
// them too.
func WithTraceContext(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ next slog.Handler }

func (t traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.next.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{t.next.WithAttrs(attrs)}
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.next.WithGroup(name)}
}
