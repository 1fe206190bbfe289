package funchost

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HTTPRoute is an HTTP trigger a function.json declares.
type HTTPRoute struct {
	// Function is the function's name (its folder).
	Function string
	// Template is the full route, route prefix included, e.g. /api/tasks/{id}.
	Template string
	// Methods are upper case; empty means every method.
	Methods []string

	segs []routeSeg
}

type segKind int

const (
	segLiteral  segKind = iota
	segParam            // {name}: one non-empty segment
	segOptional         // {name?}: one segment or none, last only
	segCatchAll         // {*name}: the rest of the path, last only
)

type routeSeg struct {
	kind    segKind
	literal string
}

func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/") // ASP.NET routing ignores one trailing slash
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (rt HTTPRoute) matches(segs []string) bool {
	for i, s := range rt.segs {
		switch s.kind {
		case segCatchAll:
			return true
		case segOptional:
			return len(segs) == i || (len(segs) == i+1 && segs[i] != "")
		}
		if i >= len(segs) {
			return false
		}
		switch s.kind {
		case segLiteral:
			if !strings.EqualFold(s.literal, segs[i]) {
				return false
			}
		case segParam:
			if segs[i] == "" {
				return false
			}
		}
	}
	return len(segs) == len(rt.segs)
}

// RoutePrefix reads extensions.http.routePrefix from a host.json: "api"
// when it is not set, "" when it is set empty.
func RoutePrefix(hostJSON string) (string, error) {
	b, err := os.ReadFile(hostJSON)
	if err != nil {
		return "", fmt.Errorf("funchost: %w", err)
	}
	var doc struct {
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("funchost: %s: %w", hostJSON, err)
	}
	if doc.Extensions.HTTP.RoutePrefix == nil {
		return "api", nil
	}
	return strings.Trim(*doc.Extensions.HTTP.RoutePrefix, "/"), nil
}

// LoadRoutes reads the HTTP triggers of every <function>/function.json in
// appDir; prefix is the route prefix ("api"). A function's route defaults
// to its name, its methods to all. Disabled functions and functions without
// an httpTrigger are skipped.
func LoadRoutes(appDir, prefix string) ([]HTTPRoute, error) {
	fns, err := loadFunctions(appDir)
	if err != nil {
		return nil, err
	}
	var routes []HTTPRoute
	for _, fn := range fns {
		for _, b := range fn.Bindings {
			if !strings.EqualFold(b.Type, "httpTrigger") {
				continue
			}
			route := fn.name
			if b.Route != nil && strings.Trim(*b.Route, "/") != "" {
				route = strings.Trim(*b.Route, "/")
			}
			rt, err := parseRoute(fn.name, prefix, route)
			if err != nil {
				return nil, fmt.Errorf("funchost: %s: %w", fn.file, err)
			}
			for _, m := range b.Methods {
				rt.Methods = append(rt.Methods, strings.ToUpper(m))
			}
			routes = append(routes, rt)
		}
	}
	return routes, nil
}

// functionDoc is one function.json: the bindings of every kind the
// simulator reads.
type functionDoc struct {
	Disabled bool `json:"disabled"`
	Bindings []struct {
		Type         string   `json:"type"`
		Direction    string   `json:"direction"`
		Name         string   `json:"name"`
		Route        *string  `json:"route"`
		Methods      []string `json:"methods"`
		Schedule     string   `json:"schedule"`
		UseMonitor   *bool    `json:"useMonitor"`
		RunOnStartup bool     `json:"runOnStartup"`
	} `json:"bindings"`

	name, file string // the function's name (its folder) and its file
}

// loadFunctions reads every enabled <function>/function.json in appDir,
// in name order.
func loadFunctions(appDir string) ([]functionDoc, error) {
	files, err := filepath.Glob(filepath.Join(appDir, "*", "function.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []functionDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("funchost: %w", err)
		}
		var doc functionDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("funchost: %s: %w", f, err)
		}
		if doc.Disabled {
			continue
		}
		doc.name, doc.file = filepath.Base(filepath.Dir(f)), f
		out = append(out, doc)
	}
	return out, nil
}

func parseRoute(function, prefix, route string) (HTTPRoute, error) {
	full := route
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		full = prefix + "/" + route
	}
	rt := HTTPRoute{Function: function, Template: "/" + full}
	parts := strings.Split(full, "/")
	for i, s := range parts {
		last := i == len(parts)-1
		if !strings.ContainsAny(s, "{}") {
			if s == "" {
				return HTTPRoute{}, fmt.Errorf("route %q has an empty segment", route)
			}
			rt.segs = append(rt.segs, routeSeg{kind: segLiteral, literal: s})
			continue
		}
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
			return HTTPRoute{}, fmt.Errorf("route %q: segment %q mixes literals and parameters, which the host simulator does not support", route, s)
		}
		name := s[1 : len(s)-1]
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i] // constraints are not checked
		}
		seg := routeSeg{kind: segParam}
		switch {
		case strings.HasPrefix(name, "*"):
			seg.kind = segCatchAll
		case strings.HasSuffix(name, "?"):
			seg.kind = segOptional
		}
		if seg.kind != segParam && !last {
			return HTTPRoute{}, fmt.Errorf("route %q: %q must be the last segment", route, s)
		}
		if strings.Trim(name, "*?") == "" {
			return HTTPRoute{}, fmt.Errorf("route %q: parameter %q has no name", route, s)
		}
		rt.segs = append(rt.segs, seg)
	}
	return rt, nil
}
