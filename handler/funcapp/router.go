// Package funcapp runs a Go program as an Azure Functions custom handler:
// it listens where the Functions host says, answers the host's readiness
// probe at once, routes the requests the host forwards, answers unknown
// routes and methods with problem+json, limits bodies, does CORS when no
// host does it, and shuts down gracefully.
package funcapp

import (
	"net/http"
	"slices"
	"strings"

	"github.com/handoff-dev/handoff/handler/problem"
)

// Route is one method and path pattern a handler serves, as function.json
// declares it (pattern in net/http's syntax, e.g. /api/orders/{id}).
type Route struct {
	Method  string
	Pattern string
}

// Router is an http.Handler of method-and-path routes that answers an
// unknown path 404 and a known path with another method 405 (with Allow),
// both as problem+json, and lists its routes so tests can compare them with
// function.json.
type Router struct {
	mux    *http.ServeMux
	routes []Route
	paths  map[string][]string // pattern → methods
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{mux: http.NewServeMux(), paths: map[string][]string{}}
}

// Handle serves method on pattern.
func (rt *Router) Handle(method, pattern string, h http.Handler) {
	method = strings.ToUpper(method)
	rt.mux.Handle(method+" "+pattern, h)
	if _, ok := rt.paths[pattern]; !ok {
		// Any other method on a known path is a 405, not a 404.
		rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			methods := rt.paths[pattern]
			w.Header().Set("Allow", strings.Join(methods, ", "))
			problem.Error(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; allowed: "+strings.Join(methods, ", "))
		})
	}
	rt.paths[pattern] = append(rt.paths[pattern], method)
	rt.routes = append(rt.routes, Route{Method: method, Pattern: pattern})
}

// Routes lists what the router serves, in the order registered.
func (rt *Router) Routes() []Route { return slices.Clone(rt.routes) }

// ServeHTTP routes r, answering an unknown path 404 as problem+json.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern == "" {
		problem.Error(w, http.StatusNotFound, "no endpoint at "+r.URL.Path)
		return
	}
	rt.mux.ServeHTTP(w, r)
}
