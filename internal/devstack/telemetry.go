package devstack

import (
	"maps"
	"strings"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// Telemetry says where the apps send their spans and metrics (OTLP/HTTP).
// The zero value runs devstack's own trace receiver (internal/otlpsink) on
// Ports.Traces and points every app at it.
type Telemetry struct {
	// Off gives the apps no OTEL_* setting, so they export nothing, and
	// runs no receiver (bench-load measures this way by default).
	Off bool
	// External are the developer's OTEL_EXPORTER_OTLP_* variables (see
	// [ExternalOTLP]): when they name OTEL_EXPORTER_OTLP_ENDPOINT, the apps
	// get them as they are and send there, and no receiver runs.
	External map[string]string
}

// EnvOTLPEndpoint is the standard variable that points an OpenTelemetry
// SDK at an OTLP endpoint.
const EnvOTLPEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"

// BatchDelayMillis is the apps' OTEL_BSP_SCHEDULE_DELAY with devstack's
// receiver: a trace is there half a second after its request (the SDK's
// default is 5 s).
const BatchDelayMillis = "500"

// ExternalOTLP picks the OTEL_EXPORTER_OTLP_* variables out of environ
// (os.Environ's form) when OTEL_EXPORTER_OTLP_ENDPOINT is among them
// (not empty); else nil: devstack's own receiver.
func ExternalOTLP(environ []string) map[string]string {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") {
			vars[k] = v
		}
	}
	if vars[EnvOTLPEndpoint] == "" {
		return nil
	}
	return vars
}

// RunsReceiver reports whether t runs devstack's receiver.
func (t Telemetry) RunsReceiver() bool { return !t.Off && t.External[EnvOTLPEndpoint] == "" }

// settings are the OTEL_* settings every app gets: none when off, the
// external ones, or devstack's receiver at sinkURL.
func (t Telemetry) settings(sinkURL string) map[string]string {
	switch {
	case t.Off:
		return nil
	case !t.RunsReceiver():
		return maps.Clone(t.External)
	}
	return map[string]string{
		EnvOTLPEndpoint:               sinkURL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY":     BatchDelayMillis,
	}
}

// Traces is devstack's trace receiver; nil when Options.Telemetry runs
// none.
func (s *Stack) Traces() *otlpsink.Sink { return s.sink }

// TracesURL is the receiver's base URL (http://127.0.0.1:7075 with
// [DefaultPorts]): OTLP at /v1/traces, the kept traces at /traces; "" when
// none runs.
func (s *Stack) TracesURL() string { return s.sinkURL }

// OTLPEndpoint is the OTEL_EXPORTER_OTLP_ENDPOINT the apps were given
// (TracesURL, or the developer's); "" when they export nothing.
func (s *Stack) OTLPEndpoint() string { return s.otlpEndpoint }
