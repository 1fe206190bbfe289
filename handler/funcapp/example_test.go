package funcapp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

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
