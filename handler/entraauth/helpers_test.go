package entraauth_test

import (
	"net/http"
	"net/http/httptest"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// okHandler answers 200 only when Protect put an identity in the context.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := entraauth.FromContext(r.Context()); !ok {
			http.Error(w, "no identity", 500)
		}
	})
}

func bearer(tok string) func() *http.Request { return header("Bearer " + tok) }

func header(v string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", v)
		return r
	}
}
