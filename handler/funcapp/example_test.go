package funcapp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

// The routes a function.json declares, served with problem+json answers
// for unknown paths and methods. In main, funcapp.Serve(ctx, cfg, rt)
// serves them where the Functions host says (FUNCTIONS_CUSTOMHANDLER_PORT).
func ExampleRouter() {
	rt := funcapp.NewRouter()
	rt.Handle("GET", "/api/orders/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "order %s", r.PathValue("id"))
	}))
	for _, req := range []string{"GET /api/orders/42", "DELETE /api/orders/42", "GET /api/nothing"} {
		method, path, _ := strings.Cut(req, " ")
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		fmt.Println(req, "->", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"))
	}
	fmt.Println(rt.Routes())
	// Output:
	// GET /api/orders/42 -> 200  text/plain; charset=utf-8
	// DELETE /api/orders/42 -> 405 GET application/problem+json
	// GET /api/nothing -> 404  application/problem+json
	// [{GET /api/orders/{id}}]
}

// A timerTrigger function: the host POSTs the invocation to /{function name}.
func ExampleTimer() {
	sweep := funcapp.Timer("timer", func(ctx context.Context, info funcapp.TimerInfo) ([]string, error) {
		return []string{fmt.Sprintf("past due: %v", info.IsPastDue)}, nil
	})
	invocation := `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"IsPastDue":true}},"Metadata":{}}`
	rec := httptest.NewRecorder()
	sweep.ServeHTTP(rec, httptest.NewRequest("POST", "/sweep", strings.NewReader(invocation)))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"Outputs":{},"Logs":["past due: true"],"ReturnValue":null}
}

// Instrument traces one route outside a Router (a Router instruments each of
// its routes itself). No OpenTelemetry SDK is installed here, so nothing is
// recorded, yet the caller's trace flows: the handler's log lines
// (NewLogHandler adds trace_id and span_id) and the traceparent it would send
// downstream carry the caller's trace. A request without a traceparent has
// no trace: its log line has no ids and nothing is sent on.
func ExampleInstrument() {
	// Once in main, SDK or not: the default global propagator reads and
	// writes nothing.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // so that the output below is the same every run
		}
		return a
	}}
	log := slog.New(funcapp.NewLogHandler(os.Stdout, os.Stdout, noTime))
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "orders listed")
		out := http.Header{} // the headers of a call to a downstream API
		otel.GetTextMapPropagator().Inject(r.Context(), propagation.HeaderCarrier(out))
		fmt.Printf("downstream traceparent: %q\n", out.Get("traceparent"))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/orders", funcapp.Instrument("GET", "/api/orders", list))

	req := httptest.NewRequest("GET", "/api/orders", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	mux.ServeHTTP(httptest.NewRecorder(), req)
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/orders", nil))
	// Output:
	// {"level":"INFO","msg":"orders listed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}
	// downstream traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	// {"level":"INFO","msg":"orders listed"}
	// downstream traceparent: ""
}
