// Package otlpsink is devstack's trace receiver: an OTLP/HTTP endpoint that
// keeps the spans the apps export in memory, so `devstack trace` and
// `make demo` can show a request's path through the three apps without a
// collector.
//
// It decodes with the OTLP protobuf types (go.opentelemetry.io/proto/otlp)
// and accepts what the OpenTelemetry Go exporters send with
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf:
//
//   - POST /v1/traces: ExportTraceServiceRequest; the spans are kept by
//     trace id (see [Limits]).
//   - POST /v1/metrics: ExportMetricsServiceRequest; decoded and counted
//     only (the exporter must not log errors against devstack).
//   - POST /v1/logs: ExportLogsServiceRequest; decoded and counted only.
//
// Bodies are application/x-protobuf, optionally gzip-compressed. OTLP/JSON
// (http/json) is refused with 415: it writes trace and span ids as hex,
// which protojson would read as base64, and a mis-decoded id is worse than
// a clear refusal. A body that is not a request of its kind is a 400, one
// over [Limits].MaxBodyBytes (compressed or not) a 413; either stores
// nothing. A success answers the empty Export…ServiceResponse.
//
// Two read routes serve the kept traces as JSON, to loopback callers only
// (and only when the Host header names a loopback address, so a web page
// cannot read them through DNS rebinding):
//
//   - GET /traces?n=N: the N most recent traces ([Sink.Recent]).
//   - GET /traces/{id}: one trace's spans ([Sink.Trace]); 404 when none
//     are kept.
package otlpsink
