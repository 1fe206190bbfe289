//go:build unix

package devstack_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/handoff-dev/handoff/internal/devstack"
)

// exportSpan sends one span of service devstack-test with the OTel SDK's
// OTLP/HTTP exporter to the receiver at base and returns its trace id.
func exportSpan(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(base+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "devstack-test"))))
	defer tp.Shutdown(ctx)
	_, span := tp.Tracer("test").Start(ctx, "test span")
	span.End()
	return span.SpanContext().TraceID().String()
}

func TestExternalOTLP(t *testing.T) {
	env := []string{"PATH=/bin", "OTEL_EXPORTER_OTLP_ENDPOINT=https://otlp.example:4318", "OTEL_EXPORTER_OTLP_HEADERS=a=b=c", "OTEL_SERVICE_NAME=x"}
	want := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=b=c"}
	if got := devstack.ExternalOTLP(env); !maps.Equal(got, want) {
		t.Errorf("ExternalOTLP = %v, want %v", got, want)
	}
	// Headers without an endpoint, or an empty endpoint: devstack's own.
	for _, env := range [][]string{{"OTEL_EXPORTER_OTLP_HEADERS=a=b"}, {"OTEL_EXPORTER_OTLP_ENDPOINT="}, nil} {
		if got := devstack.ExternalOTLP(env); got != nil {
			t.Errorf("ExternalOTLP(%q) = %v, want nil", env, got)
		}
	}
}

func TestTelemetryOffAndExternal(t *testing.T) {
	external := map[string]string{devstack.EnvOTLPEndpoint: "https://otlp.example:4318", "OTEL_EXPORTER_OTLP_HEADERS": "k=v"}
	for name, c := range map[string]struct {
		telemetry devstack.Telemetry
		want      map[string]string
	}{
		"off":      {devstack.Telemetry{Off: true, External: external}, map[string]string{}},
		"external": {devstack.Telemetry{External: external}, external},
	} {
		t.Run(name, func(t *testing.T) {
			s := startStack(t, devstack.Options{Telemetry: c.telemetry})
			if s.TracesURL() != "" || s.Traces() != nil || s.OTLPEndpoint() != c.want[devstack.EnvOTLPEndpoint] {
				t.Errorf("TracesURL %q, OTLPEndpoint %q: want no receiver", s.TracesURL(), s.OTLPEndpoint())
			}
			for _, app := range devstack.Apps() {
				got := map[string]string{}
				for k, v := range s.Settings(app) {
					if strings.HasPrefix(k, "OTEL_") {
						got[k] = v
					}
				}
				if !maps.Equal(got, c.want) {
					t.Errorf("%s's OTEL settings = %v, want %v", app, got, c.want)
				}
			}
		})
	}
}
