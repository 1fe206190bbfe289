package downstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/handler/entraauth"
)

// noSecrets fails the test if any recorded attribute, event, link or
// status of spans holds one of secrets (or a JWT at all).
func noSecrets(t *testing.T, spans tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	check := func(where, v string) {
		for _, s := range secrets {
			if s != "" && strings.Contains(v, s) {
				t.Errorf("%s holds a token or secret", where)
			}
		}
		if strings.Contains(v, "eyJ") {
			t.Errorf("%s holds what looks like a JWT: %q", where, v)
		}
	}
	kvs := func(where string, list []attribute.KeyValue) {
		for _, kv := range list {
			check(where+" attribute "+string(kv.Key), kv.Value.String())
		}
	}
	for _, s := range spans {
		kvs(s.Name, s.Attributes)
		check(s.Name+" status", s.Status.Description)
		for _, e := range s.Events {
			kvs(s.Name+" event", e.Attributes)
		}
		for _, l := range s.Links {
			kvs(s.Name+" link", l.Attributes)
		}
	}
	if len(spans) == 0 {
		t.Error("no spans to check")
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// TestTokenAcquisitionTelemetry: each acquisition is a span with its kind,
// tenant and cache outcome, and a count by kind and cache outcome; no
// attribute holds a token, the user's assertion or the app's secret.
func TestTokenAcquisitionTelemetry(t *testing.T) {
	e := newEnv(t, entra.Config{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.TracerProvider, cfg.MeterProvider = tp, mp })
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	var tokens []string
	for range 2 {
		obo, err := c.OnBehalfOfUser(context.Background(), alice, notificationScope)
		if err != nil {
			t.Fatal(err)
		}
		app, err := c.AppToken(context.Background(), auditScope)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, obo.AccessToken, app.AccessToken)
	}
	spans := exp.GetSpans()
	var got []string
	for _, s := range spans {
		a := attrMap(s.Attributes)
		if s.Name != "downstream.token" || a["handoff.tenant.id"] != entra.HomeTenantID {
			t.Errorf("span %s attributes %v", s.Name, a)
		}
		got = append(got, a["handoff.token.kind"]+" "+a["handoff.token.cache"])
	}
	if want := "obo miss, client_credentials miss, obo hit, client_credentials hit"; strings.Join(got, ", ") != want {
		t.Errorf("acquisitions %q, want %q", strings.Join(got, ", "), want)
	}
	noSecrets(t, spans, append(tokens, alice.Token, entra.TaskAPISecret)...)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "handoff.token.acquisitions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				a := attrMap(dp.Attributes.ToSlice())
				counts[a["handoff.token.kind"]+" "+a["handoff.token.cache"]] += dp.Value
			}
		}
	}
	for _, k := range []string{"obo miss", "obo hit", "client_credentials miss", "client_credentials hit"} {
		if counts[k] != 1 {
			t.Errorf("handoff.token.acquisitions %s = %d, want 1 (all: %v)", k, counts[k], counts)
		}
	}
}

// A refused credential is an error span saying what kind of error,
// without Entra's text or the secret.
func TestTokenAcquisitionErrorSpan(t *testing.T) {
	e := newEnv(t, entra.Config{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	const wrong = "not-the-secret-at-all"
	cred, err := downstream.ClientSecret(wrong)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(t, cred, func(cfg *downstream.Config) { cfg.TracerProvider = tp })
	if _, err := c.AppToken(context.Background(), auditScope); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code.String() != "Error" || attrMap(spans[0].Attributes)["error.type"] != "credential" {
		t.Fatalf("spans %+v; want one error span of type credential", spans)
	}
	noSecrets(t, spans, wrong, entra.TaskAPISecret)
}

// Validation is a span saying how it ended and, for a valid token, whose
// it is; never the token.
func TestValidationSpan(t *testing.T) {
	e := newEnv(t, entra.Config{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	v, err := entraauth.New(context.Background(), e.srv.BaseURL(), entraauth.Config{
		ClientID: entra.TaskAPIClientID, AllowAnyTenant: true, HTTPClient: e.srv.HTTPClient(), TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	h := v.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), entraauth.Scopes(entra.ScopeAccessAsUser))
	for _, tok := range []string{alice.Token, alice.Token + "x"} {
		r := httptest.NewRequest("GET", "/api/me", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if a := attrMap(spans[0].Attributes); spans[0].Name != "entraauth.validate" || a["handoff.auth.outcome"] != "valid" ||
		a["handoff.tenant.id"] != entra.HomeTenantID || a["handoff.caller_app.id"] != entra.DevClientID {
		t.Errorf("a valid token's span: %s %v", spans[0].Name, a)
	}
	if a := attrMap(spans[1].Attributes); a["handoff.auth.outcome"] != "rejected" {
		t.Errorf("a tampered token's span: %v", a)
	}
	noSecrets(t, spans, alice.Token)
}

// recordingTransport keeps the traceparent of every request it sends.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.URL.Path+" traceparent="+req.Header.Get("traceparent"))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// Token requests never carry the caller's trace context to Entra ID, even
// when the caller is in a recorded span and the propagator is set.
func TestTokenRequestsCarryNoTraceparent(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	e := newEnv(t, entra.Config{})
	rec := &recordingTransport{base: e.srv.HTTPClient().Transport}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	c := e.client(t, nil, func(cfg *downstream.Config) {
		cfg.HTTPClient = &http.Client{Transport: rec}
		cfg.TracerProvider = tp
	})
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	if _, err := c.OnBehalfOfUser(ctx, alice, notificationScope); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppToken(ctx, auditScope); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("no request went through the client's transport")
	}
	for _, s := range rec.seen {
		if !strings.HasSuffix(s, "traceparent=") {
			t.Errorf("a request to Entra ID carried a trace context: %s", s)
		}
	}
}

// TestCachedOnBehalfOf: CachedOnBehalfOf answers only from the cache: before
// the first OnBehalfOf, not ok, with no request and no span; after it, the
// same token, recorded as OnBehalfOf records a hit, with no request. A
// call that is not a user's is not ok either.
func TestCachedOnBehalfOf(t *testing.T) {
	e := newEnv(t, entra.Config{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	c := e.client(t, nil, func(cfg *downstream.Config) { cfg.TracerProvider = tp })
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	e.srv.ResetStats()
	ctx := context.Background()
	if _, ok := c.CachedOnBehalfOf(ctx, alice.Token, alice.TenantID, notificationScope); ok {
		t.Fatal("a token before any was acquired")
	}
	for _, bad := range [][3]string{{"", alice.TenantID, notificationScope}, {alice.Token, "common", notificationScope}, {alice.Token, alice.TenantID, ""}} {
		scopes := []string{bad[2]}
		if bad[2] == "" {
			scopes = nil
		}
		if _, ok := c.CachedOnBehalfOf(ctx, bad[0], bad[1], scopes...); ok {
			t.Errorf("CachedOnBehalfOf(%.10q, %q, %v) ok", bad[0], bad[1], scopes)
		}
	}
	if n := len(exp.GetSpans()); n != 0 || e.grants(entra.GrantOnBehalfOf) != 0 {
		t.Fatalf("misses recorded %d spans and made %d requests, want none", n, e.grants(entra.GrantOnBehalfOf))
	}
	want, err := c.OnBehalfOfUser(ctx, alice, notificationScope)
	if err != nil {
		t.Fatal(err)
	}
	exp.Reset()
	got, ok := c.CachedOnBehalfOf(ctx, alice.Token, alice.TenantID, notificationScope)
	if !ok || got.AccessToken != want.AccessToken {
		t.Fatalf("cached: ok %v, the same token %v", ok, got.AccessToken == want.AccessToken)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "downstream.token" || attrMap(spans[0].Attributes)["handoff.token.cache"] != "hit" ||
		attrMap(spans[0].Attributes)["handoff.token.kind"] != "obo" {
		t.Errorf("the hit's spans: %+v", spans)
	}
	if n := e.grants(entra.GrantOnBehalfOf); n != 1 {
		t.Errorf("%d On-Behalf-Of requests, want 1", n)
	}
	if s := c.Stats(); s.OBOHits != 1 {
		t.Errorf("stats %+v, want 1 hit", s)
	}
}
