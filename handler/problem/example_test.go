package problem_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/handoff-dev/handoff/handler/problem"
)

// An endpoint refusing a request: the body is an RFC 9457 problem document.
func ExampleError() {
	rec := httptest.NewRecorder()
	problem.Error(rec, 404, "no order 42")
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 404 application/problem+json
	// {"detail":"no order 42","status":404,"title":"Not Found","type":"about:blank"}
}

// Extension members sit beside the standard ones, which always win.
func ExampleWrite() {
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.Details{Status: 409, Detail: "the order changed", Extra: map[string]any{"etag": `"7"`}})
	fmt.Print(rec.Body.String())
	// Output:
	// {"detail":"the order changed","etag":"\"7\"","status":409,"title":"Conflict","type":"about:blank"}
}
