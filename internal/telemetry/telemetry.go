// Package telemetry turns OpenTelemetry export on for an app when the
// standard OTEL_EXPORTER_OTLP_* settings ask for it, and leaves the
// global no-op providers in place otherwise (docs/telemetry.md).
//
// The library (handler/...) and the services report through the
// OpenTelemetry API only; this package is the one place that installs the
// SDK and the OTLP/HTTP exporters, so a process without the settings pays
// for no SDK at all: its spans are the incoming trace context passed
// through and its measurements are dropped at the API.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The settings that turn export on: the endpoint of both signals, or of
// one. Every other OTEL_* setting (headers, protocol details, batch and
// export intervals, temporality, resource attributes) is read by the SDK
// and the exporters themselves, and only once one of these is set.
const (
	EnvEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvMetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
)

// ServiceNamespace is every app's service.namespace.
const ServiceNamespace = "handoff"

// envSiteName is set on every App Service and Functions instance: the app's name.
const envSiteName = "WEBSITE_SITE_NAME"

// Providers are the SDK providers Setup installed; nil fields were not
// asked for.
type Providers struct {
	Tracer *sdktrace.TracerProvider
	Meter  *sdkmetric.MeterProvider
}

// Shutdown flushes what is buffered and stops the exporters.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	if p.Tracer != nil {
		errs = append(errs, p.Tracer.Shutdown(ctx))
	}
	if p.Meter != nil {
		errs = append(errs, p.Meter.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Setup sets W3C Trace Context as the global propagator (always: it is what
// continues a caller's traceparent and sends it on, export or not) and, if
// an OTLP endpoint is set, installs global providers that export spans
// and metrics over OTLP/HTTP, in batches, as serviceName. Otherwise it
// installs nothing: nothing is sent. shutdown flushes and stops the
// exporters (call it before the process exits); it is a no-op when
// nothing was installed.
func Setup(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	p, err := New(ctx, serviceName, os.Getenv)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return func(context.Context) error { return nil }, nil
	}
	if p.Tracer != nil {
		otel.SetTracerProvider(p.Tracer)
	}
	if p.Meter != nil {
		otel.SetMeterProvider(p.Meter)
	}
	return p.Shutdown, nil
}

// Exporting says which signals the settings getenv reads export.
func Exporting(getenv func(string) string) (traces, metrics bool) {
	return getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != "", getenv(EnvEndpoint) != "" || getenv(EnvMetricsEndpoint) != ""
}

// New makes the providers the settings getenv reads ask for, without
// installing them: nil when no OTLP endpoint is set. (The exporters read
// the process's environment for their other settings.)
func New(ctx context.Context, serviceName string, getenv func(string) string) (*Providers, error) {
	traces, metrics := Exporting(getenv)
	if !traces && !metrics {
		return nil, nil
	}
	res, err := newResource(ctx, serviceName, getenv)
	if err != nil {
		return nil, err
	}
	p := &Providers{}
	if traces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: the OTLP trace exporter: %w (check %s or %s)", err, EnvEndpoint, EnvTracesEndpoint)
		}
		p.Tracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	if metrics {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			_ = p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: the OTLP metric exporter: %w (check %s or %s)", err, EnvEndpoint, EnvMetricsEndpoint)
		}
		p.Meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(res))
	}
	return p, nil
}

// newResource names the app: service.name and service.namespace, the
// Function App's name as faas.name in Azure, and what OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES say (which win).
func newResource(ctx context.Context, serviceName string, getenv func(string) string) (*resource.Resource, error) {
	attrs := resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceNamespace(ServiceNamespace))
	opts := []resource.Option{resource.WithSchemaURL(semconv.SchemaURL), attrs, resource.WithTelemetrySDK()}
	if site := getenv(envSiteName); site != "" {
		opts = append(opts, resource.WithAttributes(semconv.FaaSName(site), semconv.CloudProviderAzure, semconv.CloudPlatformAzureFunctions))
	}
	opts = append(opts, resource.WithFromEnv())
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w (check OTEL_RESOURCE_ATTRIBUTES)", err)
	}
	return res, nil
}
