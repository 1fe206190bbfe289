package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

// demoTarget is the stack the demo talks to.
type demoTarget struct {
	entraURL, taskURL, caFile string
	// tracesURL is its trace receiver ("" when none is known);
	// otlpEndpoint is where its apps send spans.
	tracesURL, otlpEndpoint string
}

// demo shows the token journey: A (user → Task API), B (OBO → Notification)
// and C (client credentials → Audit), a create through the Task API, and
// the create's trace.
func demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devstack demo", flag.ContinueOnError)
	state := fs.String("state", "", "use the devstack running with this state directory (its "+runInfoFile+"), not the default ports")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		usage()
	}
	if *state != "" {
		target, err := runningTarget(*state)
		if err != nil {
			return err
		}
		return runDemo(ctx, target, os.Stdout)
	}
	p, err := findPaths()
	if err != nil {
		return err
	}
	target, stop, err := defaultTarget(ctx, p)
	if err != nil {
		return err
	}
	defer stop()
	return runDemo(ctx, target, os.Stdout)
}

// runningTarget is the devstack running with stateDir.
func runningTarget(stateDir string) (demoTarget, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return demoTarget{}, err
	}
	info, err := readRunInfo(abs)
	if err != nil {
		return demoTarget{}, err
	}
	return demoTarget{entraURL: info.Entra, taskURL: info.Task, caFile: info.CAFile, tracesURL: info.Traces, otlpEndpoint: info.OTLPEndpoint}, nil
}

// defaultTarget is the stack on the default ports: the one running there,
// or, when nothing answers, one started for the demo (stop stops it).
func defaultTarget(ctx context.Context, p paths) (_ demoTarget, stop func(), _ error) {
	ports := devstack.DefaultPorts()
	t := demoTarget{
		entraURL: fmt.Sprintf("https://127.0.0.1:%d", ports.Entra), taskURL: fmt.Sprintf("http://127.0.0.1:%d", ports.Task),
		caFile: filepath.Join(p.state, "entra", "ca.pem"),
	}
	// Before a first run there is no CA yet: then only a refused port tells.
	entraClient, caErr := httpClient(t.caFile)
	entraUp := answers(ctx, t.entraURL, entraClient)
	if entraUp != nil && !isRefused(entraUp) && caErr != nil {
		entraUp = caErr
	}
	taskUp := answers(ctx, t.taskURL, http.DefaultClient)
	switch {
	case entraUp == nil && taskUp == nil:
		fmt.Fprintln(os.Stderr, "devstack: using the stack running on the default ports")
		// make run describes itself in .state: its trace receiver.
		if info, err := readRunInfo(p.state); err == nil && info.Task == t.taskURL {
			t.tracesURL, t.otlpEndpoint = info.Traces, info.OTLPEndpoint
		}
		return t, func() {}, nil
	case isRefused(entraUp) && isRefused(taskUp):
		return startForDemo(ctx, p, t)
	}
	return t, nil, fmt.Errorf("the stack on the default ports answers only in part (Entra emulator: %v; Task API: %v); restart `make run`", orOK(entraUp), orOK(taskUp))
}

// startForDemo starts a stack on the default ports for the demo, with its
// logs in .state/demo.log.
func startForDemo(ctx context.Context, p paths, t demoTarget) (demoTarget, func(), error) {
	logPath := filepath.Join(p.state, "demo.log")
	if err := os.MkdirAll(p.state, 0o755); err != nil {
		return t, nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return t, nil, err
	}
	fmt.Fprintf(os.Stderr, "devstack: no stack answers on the default ports; starting one for the demo (logs in %s)\n", relative(logPath))
	s, err := start(ctx, p, logFile, devstack.DefaultPorts(), "", telemetryFor(false))
	if err != nil {
		logFile.Close()
		return t, nil, fmt.Errorf("%w (logs in %s)", err, relative(logPath))
	}
	t.tracesURL, t.otlpEndpoint = s.TracesURL(), s.OTLPEndpoint()
	return t, func() {
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "devstack: stop:", err)
		}
		logFile.Close()
	}, nil
}

// demoTokens are tokens A, B and C, decoded.
type demoTokens struct {
	user       string
	a          string // A itself, for the create
	claimsA    map[string]any
	claimsB    map[string]any
	claimsC    map[string]any
	taskScope  string
	httpClient *http.Client
}

// signInForDemo signs alice in (A) and makes the Task API's two exchanges
// (B and C) with its dev secret.
func signInForDemo(ctx context.Context, t demoTarget) (demoTokens, error) {
	hc, err := httpClient(t.caFile) // the stack may have just written it
	if err != nil {
		return demoTokens{}, err
	}
	d := demoTokens{user: "alice@home.handoff.test", taskScope: "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser, httpClient: hc}

	// A: alice signs in to the Task API with the dev client.
	pc, err := public.New(entra.DevClientID, public.WithAuthority(t.entraURL+"/"+entra.HomeTenantID),
		public.WithHTTPClient(hc), public.WithInstanceDiscovery(false))
	if err != nil {
		return d, err
	}
	//lint:ignore SA1019 the password grant is deprecated; the demo signs a test user in without a browser.
	a, err := pc.AcquireTokenByUsernamePassword(ctx, []string{d.taskScope}, d.user, entra.DefaultUserPassword)
	if err != nil {
		return d, fmt.Errorf("sign in as %s: %w", d.user, err)
	}
	d.a = a.AccessToken
	if d.claimsA, err = decode(a.AccessToken); err != nil {
		return d, err
	}

	// B and C: the exchanges the Task API makes on a create, repeated here
	// with its dev secret to show what it gets.
	cred, err := confidential.NewCredFromSecret(entra.TaskAPISecret)
	if err != nil {
		return d, err
	}
	tid, _ := d.claimsA["tid"].(string)
	userTenant, err := confidential.New(t.entraURL+"/"+tid, entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(hc), confidential.WithInstanceDiscovery(false))
	if err != nil {
		return d, err
	}
	b, err := userTenant.AcquireTokenOnBehalfOf(ctx, a.AccessToken, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		return d, fmt.Errorf("On-Behalf-Of: %w", err)
	}
	home, err := confidential.New(t.entraURL+"/"+entra.HomeTenantID, entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(hc), confidential.WithInstanceDiscovery(false))
	if err != nil {
		return d, err
	}
	c, err := home.AcquireTokenByCredential(ctx, []string{entra.AuditClientID + "/.default"})
	if err != nil {
		return d, fmt.Errorf("client credentials: %w", err)
	}
	if d.claimsB, err = decode(b.AccessToken); err != nil {
		return d, err
	}
	d.claimsC, err = decode(c.AccessToken)
	return d, err
}

// runDemo signs in, creates a task with a traceparent of its own, and
// prints the tokens, the create and its trace on w.
func runDemo(ctx context.Context, t demoTarget, w io.Writer) error {
	d, err := signInForDemo(ctx, t)
	if err != nil {
		return err
	}
	tp, err := demoTracer(ctx, t.tracesURL)
	if err != nil {
		return err
	}
	created, sc, err := createTask(ctx, tp.Tracer("devstack demo"), d.httpClient, t.taskURL, d.a)
	// Shutdown sends the demo's span; without it the tree still shows the apps'.
	if err := tp.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devstack: the demo's own span was not exported:", err)
	}
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\nSigned in as %s: token A, for the Task API. On a create the Task API exchanges it\n", d.user)
	fmt.Fprintln(w, "On-Behalf-Of alice for token B (Notification Service, at her tenant) and gets token C as")
	fmt.Fprintln(w, "itself with client credentials (Audit Service, home tenant); B and C below are the same")
	fmt.Fprintln(w, "exchanges, made here with the Task API's dev secret:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "claim\tA: user → Task API\tB: OBO → Notification\tC: app → Audit")
	for _, k := range []string{"aud", "scp", "roles", "oid", "name", "tid", "azp/appid", "idtyp"} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k, claim(d.claimsA, k), claim(d.claimsB, k), claim(d.claimsC, k))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nPOST %s/api/tasks with token A → %d\n", t.taskURL, created.status)
	fmt.Fprintf(tw, "  id\t%v\n  title\t%v\n  notification_status\t%v\n  audit_status\t%v\n",
		created.body["id"], created.body["title"], created.body["notification_status"], created.body["audit_status"])
	tw.Flush()
	for _, k := range []string{"notification_failure", "audit_failure"} {
		if v, ok := created.body[k]; ok {
			j, _ := json.Marshal(v)
			fmt.Fprintf(w, "  %s: %s\n", k, j)
		}
	}
	if err := printDemoTrace(ctx, w, t, sc); err != nil {
		return err
	}
	if created.status != http.StatusCreated {
		return fmt.Errorf("the create answered %d: %s", created.status, created.raw)
	}
	return nil
}

// demoService is the service.name of the demo's own span.
const demoService = "devstack-demo"

// demoTracer makes the demo's span of its create, the trace's root,
// exported to the trace receiver at tracesURL ("": not exported, but its
// ids still go out in the traceparent).
func demoTracer(ctx context.Context, tracesURL string) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", demoService))),
	}
	if tracesURL != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(tracesURL+"/v1/traces"))
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

type response struct {
	status int
	raw    []byte
	body   map[string]any
}

// createTask creates a task in a client span of tracer, whose context it
// sends as the traceparent, and returns the answer and the span's context.
func createTask(ctx context.Context, tracer trace.Tracer, hc *http.Client, taskURL, token string) (response, trace.SpanContext, error) {
	ctx, span := tracer.Start(ctx, "POST /api/tasks", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("url.full", taskURL+"/api/tasks")))
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, taskURL+"/api/tasks",
		strings.NewReader(`{"title":"hello from devstack demo","description":"tokens A, B and C"}`))
	if err != nil {
		return response{}, span.SpanContext(), err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := hc.Do(req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return response{}, span.SpanContext(), fmt.Errorf("create a task: %w", err)
	}
	defer resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return response{}, span.SpanContext(), err
	}
	r := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r, span.SpanContext(), nil
}

// printDemoTrace prints the create's trace as a tree, once spans of the
// three apps arrived or after traceWait with what did.
func printDemoTrace(ctx context.Context, w io.Writer, t demoTarget, sc trace.SpanContext) error {
	id := sc.TraceID().String()
	traceparent := fmt.Sprintf("00-%s-%s-%s", id, sc.SpanID(), sc.TraceFlags())
	switch {
	case t.tracesURL == "" && t.otlpEndpoint != "":
		fmt.Fprintf(w, "\nThe create's trace is %s (traceparent %s): the apps send their spans to %s.\n", id, traceparent, t.otlpEndpoint)
		return nil
	case t.tracesURL == "":
		fmt.Fprintf(w, "\nThe create's trace is %s (traceparent %s); this devstack keeps no traces (-no-traces, or no %s).\n", id, traceparent, runInfoFile)
		return nil
	}
	fmt.Fprintf(w, "\nThe create's trace (it sent traceparent %s), from devstack's trace receiver:\n\n", traceparent)
	got, missing, err := waitForTrace(ctx, &http.Client{Timeout: traceClientTimeout}, t.tracesURL, id, demoApps, traceWait)
	if err != nil {
		return err
	}
	got.TraceID = id
	if err := writeTrace(w, got); err != nil {
		return err
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "\nNo spans from %s arrived within %s: does each app export OTLP when %s is set?\n",
			strings.Join(missing, ", "), traceWait, devstack.EnvOTLPEndpoint)
	}
	return nil
}
