// Package funcapp runs a Go program as an Azure Functions custom handler:
// it listens where the Functions host says, answers the host's readiness
// probe at once, routes the requests the host forwards, answers unknown
// routes and methods with problem+json, limits bodies, does CORS when no
// host does it, and shuts down gracefully.
package funcapp

import (
	"maps"
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
//
// It matches paths as the Functions host (ASP.NET Core routing) does, so
// that whatever the host forwards is served: literal segments match
// case-insensitively (/API/Orders is /api/orders), one trailing slash is
// ignored (/api/orders/), and a {param} matches one non-empty segment,
// kept as sent.
type Router struct {
	mux    *http.ServeMux
	routes []Route
	paths  map[string][]string // pattern → methods
	segs   map[string][]string // pattern → its segments
	ins    *instruments
}

// NewRouter returns an empty Router. Its routes are traced and measured
// ([Instrument]) with the global OpenTelemetry providers, or those opts name.
func NewRouter(opts ...Option) *Router {
	return &Router{mux: http.NewServeMux(), paths: map[string][]string{}, segs: map[string][]string{}, ins: newInstruments(opts)}
}

// Handle serves method on pattern, in a server span named after them
// ([Instrument]).
func (rt *Router) Handle(method, pattern string, h http.Handler) {
	method = strings.ToUpper(method)
	rt.mux.Handle(method+" "+pattern, rt.ins.instrument(method, pattern, h))
	if _, ok := rt.paths[pattern]; !ok {
		// Any other method on a known path is a 405, not a 404.
		rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			methods := rt.paths[pattern]
			w.Header().Set("Allow", strings.Join(methods, ", "))
			problem.Error(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; allowed: "+strings.Join(methods, ", "))
		})
	}
	rt.paths[pattern] = append(rt.paths[pattern], method)
	rt.segs[pattern] = splitSegments(pattern)
	rt.routes = append(rt.routes, Route{Method: method, Pattern: pattern})
}

// Routes lists what the router serves, in the order registered.
func (rt *Router) Routes() []Route { return slices.Clone(rt.routes) }

// ServeHTTP routes r, answering an unknown path 404 as problem+json.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	canonical, ok := rt.canonical(r.URL.Path)
	if !ok {
		problem.Error(w, http.StatusNotFound, "no endpoint at "+r.URL.Path)
		return
	}
	if canonical != r.URL.Path {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = canonical, ""
		r2.URL = &u
		r = r2
	}
	rt.mux.ServeHTTP(w, r)
}

// canonical is path in the spelling of the pattern it matches as the host
// matches (see Router): the pattern's literals, the parameters as sent, no
// trailing slash. ok is false when no pattern matches.
func (rt *Router) canonical(path string) (string, bool) {
	segs := splitSegments(path)
	for _, pattern := range slices.Sorted(maps.Keys(rt.segs)) {
		want := rt.segs[pattern]
		if len(want) != len(segs) {
			continue
		}
		out := make([]string, len(segs))
		for i, s := range want {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && segs[i] != "":
				out[i] = segs[i]
			case strings.EqualFold(s, segs[i]):
				out[i] = s
			default:
				out = nil
			}
			if out == nil {
				break
			}
		}
		if out != nil {
			return "/" + strings.Join(out, "/"), true
		}
	}
	return "", false
}

// splitSegments splits a path into its segments, without the leading
// slash and one trailing slash (as ASP.NET Core routing ignores it).
func splitSegments(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
