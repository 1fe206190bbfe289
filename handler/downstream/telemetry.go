package downstream

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the OpenTelemetry instrumentation scope of this package's
// spans and metrics.
const ScopeName = "github.com/handoff-dev/handoff/handler/downstream"

// Token kinds, as spans and metrics name them (handoff.token.kind).
const (
	kindOBO = "obo"                // On-Behalf-Of a user
	kindApp = "client_credentials" // the app itself
)

// Attributes of the downstream.token span and the handoff.token.acquisitions
// metric. No attribute ever holds a token, an assertion or a claim.
const (
	attrTokenKind  = attribute.Key("handoff.token.kind")
	attrTokenCache = attribute.Key("handoff.token.cache") // hit | miss
	attrTenant     = attribute.Key("handoff.tenant.id")
)

// telemetry reports token acquisitions: one span each (downstream.token)
// and the count handoff.token.acquisitions by kind, cache outcome and
// error type.
type telemetry struct {
	tracer       trace.Tracer
	acquisitions metric.Int64Counter
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) *telemetry {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	n, err := mp.Meter(ScopeName).Int64Counter("handoff.token.acquisitions", metric.WithUnit("{acquisition}"),
		metric.WithDescription("Token acquisitions, by kind (obo, client_credentials), cache outcome (hit, miss) and error type."))
	if err != nil {
		otel.Handle(err)
	}
	return &telemetry{tracer: tp.Tracer(ScopeName), acquisitions: n}
}

var tokenSpanKind = trace.WithSpanKind(trace.SpanKindInternal)

// start starts an acquisition's span.
func (t *telemetry) start(ctx context.Context, kind, tenant string) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, "downstream.token", tokenSpanKind)
	if span.IsRecording() {
		span.SetAttributes(attrTokenKind.String(kind), attrTenant.String(tenant))
	}
	return ctx, span
}

// end records how an acquisition went: from a cache (this client's or
// MSAL's) or from Entra, or the error's type (never its text, which may
// quote what Entra answered).
func (t *telemetry) end(ctx context.Context, span trace.Span, kind string, fromCache bool, err error) {
	defer span.End()
	recording, metered := span.IsRecording(), t.acquisitions.Enabled(ctx)
	if !recording && !metered {
		return
	}
	cache := "miss"
	if fromCache && err == nil {
		cache = "hit"
	}
	attrs := []attribute.KeyValue{attrTokenKind.String(kind), attrTokenCache.String(cache)}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
	}
	if recording {
		span.SetAttributes(attrs...)
		if err != nil {
			span.SetStatus(codes.Error, errorType(err))
		}
	}
	if metered {
		t.acquisitions.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
}

// errorType names an acquisition error by its kind, for spans and
// metrics: a closed set, never the error's text. ErrNotDelegated and
// ErrRefreshLimited are returned outside any acquisition's span, so
// neither is named here.
func errorType(err error) string {
	var (
		consent     *ConsentRequiredError
		interaction *InteractionRequiredError
		assertion   *InvalidAssertionError
		credential  *CredentialError
		refused     *TokenError
	)
	switch {
	case errors.As(err, &consent):
		return "consent_required"
	case errors.As(err, &interaction):
		return "interaction_required"
	case errors.As(err, &assertion):
		return "invalid_assertion"
	case errors.As(err, &credential):
		return "credential"
	case errors.As(err, &refused):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.Is(err, ErrTransient):
		return "unavailable"
	}
	return "other"
}
