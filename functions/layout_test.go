package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/funchost"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// schemaDir holds SchemaStore's schemas, vendored unchanged (see its
// README.md for their source, version and licence).
var schemaDir = filepath.Join("testdata", "schemas")

// apps are the Function Apps: each folder here is one, served by one binary.
var apps = []struct {
	name     string
	pkg      string // the internal package of its routes and settings
	port     int    // Host.LocalHttpPort: the app's port in docs/architecture.md
	routes   []funcapp.Route
	settings []string
	timers   []string // its timer functions: the handler serves each at /<name>
}{
	{"task", "taskapi", 7071, taskapi.Routes(), taskapi.Settings, []string{taskapi.SweepFunction}},
	{"notification", "notifyapi", 7072, notifyapi.Routes(), notifyapi.Settings, nil},
	{"audit", "auditapi", 7073, auditapi.Routes(), auditapi.Settings, nil},
}

// hostSettings are in every local.settings.json besides the app's own.
var hostSettings = []string{"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}

// schemas compiles the three schemas once per test.
type schemas struct{ host, function, localSettings *jsonschema.Schema }

func loadSchemas(t *testing.T) schemas {
	t.Helper()
	return schemas{
		host: compileSchema(t, "host.schema.json", false),
		// function.schema.json declares draft-04 but uses const, which
		// draft-04 ignores: valid http bindings would then match several
		// oneOf branches and be rejected. Draft-7 semantics, as upstream means.
		function:      compileSchema(t, "function.schema.json", true),
		localSettings: compileSchema(t, "local.settings.schema.json", false),
	}
}

// compileSchema compiles testdata/schemas/name; draft7 drops the schema's
// own $schema so the compiler's default draft, Draft 7, applies.
func compileSchema(t *testing.T, name string, draft7 bool) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(schemaDir, name))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if draft7 {
		obj, ok := doc.(map[string]any)
		if !ok {
			t.Fatalf("schema %s is not an object", name)
		}
		delete(obj, "$schema")
	}
	url := "file:///schemas/" + name
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	return s
}

// validate checks a JSON document against s; it also rejects what is not JSON.
func validate(s *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode decodes strictly into v (unknown fields are the schema's business).
func decode(t *testing.T, path string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type hostJSON struct {
	CustomHandler struct {
		Description struct {
			DefaultExecutablePath string `json:"defaultExecutablePath"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	Extensions struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`
}

type binding struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Name      string   `json:"name"`
	AuthLevel string   `json:"authLevel"`
	Route     string   `json:"route"`
	Methods   []string `json:"methods"`
	// timerTrigger
	Schedule     string `json:"schedule"`
	RunOnStartup bool   `json:"runOnStartup"`
}

type functionJSON struct {
	Bindings []binding `json:"bindings"`
}

type localSettings struct {
	IsEncrypted bool           `json:"IsEncrypted"`
	Values      map[string]any `json:"Values"`
	Host        struct {
		LocalHTTPPort int    `json:"LocalHttpPort"`
		CORS          string `json:"CORS"`
	} `json:"Host"`
}

func TestHostJSON(t *testing.T) {
	s := loadSchemas(t)
	path := filepath.Join("..", "host.json")
	data := readFile(t, path)
	if err := validate(s.host, data); err != nil {
		t.Fatalf("%s does not validate against host.schema.json:\n%v", path, err)
	}
	var h hostJSON
	decode(t, path, data, &h)
	if got := h.CustomHandler.Description.DefaultExecutablePath; got != "handler" {
		t.Errorf("customHandler.description.defaultExecutablePath = %q, want \"handler\" (every app's binary is named handler)", got)
	}
	if !h.CustomHandler.EnableForwardingHTTPRequest {
		t.Error("customHandler.enableForwardingHttpRequest is not true: the handler serves the forwarded HTTP requests")
	}
	if p := h.Extensions.HTTP.RoutePrefix; p == nil || *p != "api" {
		t.Errorf("extensions.http.routePrefix = %v, want \"api\" (Routes() patterns start with /api/)", p)
	}
}

// functionFiles lists the function.json files of app, sorted.
func functionFiles(t *testing.T, app string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(app, "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func TestFunctionJSON(t *testing.T) {
	s := loadSchemas(t)
	known := map[string]bool{}
	for _, app := range apps {
		known[app.name] = true
	}
	all, err := filepath.Glob(filepath.Join("*", "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if app := filepath.Dir(filepath.Dir(f)); !known[app] {
			t.Errorf("%s belongs to no known app (%v)", f, slices.Sorted(maps.Keys(known)))
		}
	}

	for _, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			files := functionFiles(t, app.name)
			if len(files) == 0 {
				t.Fatalf("no function.json under %s/", app.name)
			}
			examples := exampleValues(t, app.name)
			declared := map[funcapp.Route]string{} // route → file that declares it
			var timers []string
			for _, f := range files {
				data := readFile(t, f)
				if err := validate(s.function, data); err != nil {
					t.Errorf("%s does not validate against function.schema.json:\n%v", f, err)
					continue
				}
				var fn functionJSON
				decode(t, f, data, &fn)
				if isTimer(fn) {
					// Invoked by the host at /<name>, outside the HTTP
					// routes: not part of the route comparison.
					name := filepath.Base(filepath.Dir(f))
					for _, p := range checkTimerFunction(name, fn, app.pkg, app.settings, examples) {
						t.Errorf("%s: %s", f, p)
					}
					timers = append(timers, name)
					continue
				}
				var triggers, outs []binding
				for _, b := range fn.Bindings {
					switch {
					case b.Type == "httpTrigger" && b.Direction == "in":
						triggers = append(triggers, b)
					case b.Type == "http" && b.Direction == "out":
						outs = append(outs, b)
					default:
						t.Errorf("%s: unexpected binding %s/%s %q", f, b.Type, b.Direction, b.Name)
					}
				}
				if len(triggers) != 1 || len(outs) != 1 || outs[0].Name != "res" {
					t.Errorf("%s: want one httpTrigger in and one http out named \"res\", got %d triggers and %+v", f, len(triggers), outs)
					continue
				}
				tr := triggers[0]
				if tr.AuthLevel != "anonymous" {
					t.Errorf("%s: authLevel = %q, want \"anonymous\" (the handler validates tokens itself; a function key would stand in front of it)", f, tr.AuthLevel)
				}
				if tr.Route == "" || strings.HasPrefix(tr.Route, "/") || strings.HasPrefix(tr.Route, "api/") {
					t.Errorf("%s: route %q must be set and relative to the api prefix (host.json adds it)", f, tr.Route)
				}
				if len(tr.Methods) == 0 {
					t.Errorf("%s: no methods (the host would then accept every method)", f)
				}
				for _, m := range tr.Methods {
					if m != strings.ToLower(m) {
						t.Errorf("%s: method %q is not lowercase", f, m)
					}
					r := funcapp.Route{Method: strings.ToUpper(m), Pattern: "/api/" + tr.Route}
					if prev, dup := declared[r]; dup {
						t.Errorf("%s: %s %s is already declared by %s", f, r.Method, r.Pattern, prev)
					}
					declared[r] = f
				}
			}
			served := slices.DeleteFunc(slices.Clone(app.routes), func(r funcapp.Route) bool {
				return slices.Contains(timers, strings.TrimPrefix(r.Pattern, "/")) // a timer function's handler
			})
			if diff := routeDiff(slices.Collect(maps.Keys(declared)), served); diff != "" {
				t.Errorf("the %s app's function.json files and %s.Routes() differ:\n%s", app.name, app.pkg, diff)
			}
			slices.Sort(timers)
			want := slices.Sorted(slices.Values(app.timers))
			if !slices.Equal(timers, want) {
				t.Errorf("the %s app's timer functions are %v, its handler serves %v (the host POSTs each to /<folder name>)", app.name, timers, want)
			}
		})
	}
}

// isTimer reports whether fn is a timer-triggered function.
func isTimer(fn functionJSON) bool {
	return slices.ContainsFunc(fn.Bindings, func(b binding) bool { return b.Type == "timerTrigger" })
}

// functionName is what the Functions host accepts as a function's name.
var functionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,127}$`)

// settingRef is a whole binding property that names an app setting.
var settingRef = regexp.MustCompile(`^%([A-Za-z_][A-Za-z0-9_]*)%$`)

// checkTimerFunction lists what is wrong with the timer function name of
// an app whose settings (pkg.Settings) and example values are given.
func checkTimerFunction(name string, fn functionJSON, pkg string, settings []string, examples map[string]any) []string {
	var problems []string
	if !functionName.MatchString(name) {
		problems = append(problems, fmt.Sprintf("%q is not a function name the host accepts (a letter, then letters, digits, _ or -)", name))
	}
	if strings.EqualFold(name, "api") {
		problems = append(problems, fmt.Sprintf("the host invokes a timer function at /%s, which is where the HTTP routes live (/api/...): rename it", name))
	}
	if len(fn.Bindings) != 1 || fn.Bindings[0].Type != "timerTrigger" || fn.Bindings[0].Direction != "in" {
		var got []string
		for _, b := range fn.Bindings {
			got = append(got, b.Type+"/"+b.Direction)
		}
		return append(problems, fmt.Sprintf("a timer function has exactly one binding, a timerTrigger in (no HTTP trigger, no output binding); got %v", got))
	}
	b := fn.Bindings[0]
	if b.RunOnStartup {
		problems = append(problems, "runOnStartup is true: the function would also run at every restart and scale-out")
	}
	m := settingRef.FindStringSubmatch(b.Schedule)
	if m == nil {
		return append(problems, fmt.Sprintf("schedule %q must name an app setting, %%SETTING%%, so each environment sets its own", b.Schedule))
	}
	if !slices.Contains(settings, m[1]) {
		problems = append(problems, fmt.Sprintf("schedule %s names a setting that is not in %s.Settings", b.Schedule, pkg))
	}
	if v, ok := examples[m[1]].(string); ok {
		if _, err := funchost.ParseNCRONTAB(v); err != nil {
			problems = append(problems, fmt.Sprintf("the example's %s is not a schedule: %v", m[1], err))
		}
	}
	return problems
}

// exampleValues are the Values of an app's local.settings.json.example
// (nil if it cannot be read: TestLocalSettingsExamples reports that).
func exampleValues(t *testing.T, app string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(app, "local.settings.json.example"))
	if err != nil {
		return nil
	}
	var ls localSettings
	if json.Unmarshal(data, &ls) != nil {
		return nil
	}
	return ls.Values
}

// routeDiff describes how the declared routes and the served ones differ.
func routeDiff(declared, served []funcapp.Route) string {
	key := func(r funcapp.Route) string { return r.Method + " " + r.Pattern }
	d, s := map[string]bool{}, map[string]bool{}
	for _, r := range declared {
		d[key(r)] = true
	}
	for _, r := range served {
		s[key(r)] = true
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if !s[k] {
			fmt.Fprintf(&b, "  in function.json, not in Routes(): %s\n", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if !d[k] {
			fmt.Fprintf(&b, "  in Routes(), not in function.json: %s\n", k)
		}
	}
	return b.String()
}

func TestLocalSettingsExamples(t *testing.T) {
	s := loadSchemas(t)
	ports := map[int]string{}
	for _, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			path := filepath.Join(app.name, "local.settings.json.example")
			data := readFile(t, path)
			if err := validate(s.localSettings, data); err != nil {
				t.Fatalf("%s does not validate against local.settings.schema.json:\n%v", path, err)
			}
			var ls localSettings
			decode(t, path, data, &ls)
			if ls.IsEncrypted {
				t.Errorf("%s: IsEncrypted is true; an example is plain text", path)
			}
			want := map[string]bool{}
			for _, k := range append(slices.Clone(hostSettings), app.settings...) {
				want[k] = true
			}
			var diff strings.Builder
			for _, k := range slices.Sorted(maps.Keys(ls.Values)) {
				if !want[k] {
					fmt.Fprintf(&diff, "  in the example, not read by the app: %s\n", k)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if _, ok := ls.Values[k]; !ok {
					fmt.Fprintf(&diff, "  read by the app (%s.Settings or the host's), missing from the example: %s\n", app.pkg, k)
				}
			}
			if diff.Len() > 0 {
				t.Errorf("%s: Values differ from %v ∪ Settings:\n%s", path, hostSettings, diff.String())
			}
			for k, v := range ls.Values {
				if _, ok := v.(string); !ok {
					t.Errorf("%s: Values[%q] = %v is not a string (app settings are strings)", path, k, v)
				}
			}
			if rt := ls.Values["FUNCTIONS_WORKER_RUNTIME"]; rt != "custom" {
				t.Errorf("%s: FUNCTIONS_WORKER_RUNTIME = %v, want \"custom\"", path, rt)
			}
			if ls.Host.LocalHTTPPort != app.port {
				t.Errorf("%s: Host.LocalHttpPort = %d, want %d", path, ls.Host.LocalHTTPPort, app.port)
			}
			if other, dup := ports[ls.Host.LocalHTTPPort]; dup {
				t.Errorf("%s: Host.LocalHttpPort %d is also %s's", path, ls.Host.LocalHTTPPort, other)
			}
			ports[ls.Host.LocalHTTPPort] = app.name
		})
	}
}

// TestSchemasRejectBrokenDocuments shows the schema checks above can fail:
// each document is one mistake away from a valid one.
func TestSchemasRejectBrokenDocuments(t *testing.T) {
	s := loadSchemas(t)
	const fn = `{"bindings": [
		{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": %q, "route": "tasks", "methods": [%q]},
		{"type": "http", "direction": "out", "name": "res"}]}`
	const host = `{"version": "2.0", %s
		"customHandler": {"description": {"defaultExecutablePath": "handler"}, "enableForwardingHttpRequest": true %s},
		"extensions": {"http": {"routePrefix": "api"}}}`
	const local = `{"IsEncrypted": false, "Values": {"FUNCTIONS_WORKER_RUNTIME": %q}, "Host": {"LocalHttpPort": %s}}`
	for _, tc := range []struct {
		name   string
		schema *jsonschema.Schema
		doc    string
		valid  bool
	}{
		{"function.json valid", s.function, fmt.Sprintf(fn, "anonymous", "get"), true},
		{"function.json authLevel bogus", s.function, fmt.Sprintf(fn, "bogus", "get"), false},
		{"function.json method bogus", s.function, fmt.Sprintf(fn, "anonymous", "fetch"), false},
		{"function.json direction sideways", s.function, `{"bindings": [{"type": "httpTrigger", "direction": "sideways", "name": "req"}]}`, false},
		{"function.json binding without name", s.function, `{"bindings": [{"type": "http", "direction": "out"}]}`, false},
		{"function.json not JSON", s.function, `{"bindings": [`, false},
		{"function.json timer valid", s.function, timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), true},
		{"function.json timer out", s.function, timerDoc("out", `"%AUDIT_SWEEP_SCHEDULE%"`), false},
		{"function.json timer schedule not a string", s.function, timerDoc("in", `300`), false},
		{"host.json valid", s.host, fmt.Sprintf(host, "", ""), true},
		{"host.json with $schema", s.host, fmt.Sprintf(host, `"$schema": "https://json.schemastore.org/host.json",`, ""), false},
		{"host.json string port", s.host, fmt.Sprintf(host, "", `, "port": "8080"`), false},
		{"host.json unknown key", s.host, fmt.Sprintf(host, `"customHandlers": {},`, ""), false},
		{"local.settings valid", s.localSettings, fmt.Sprintf(local, "custom", "7071"), true},
		{"local.settings unknown runtime", s.localSettings, fmt.Sprintf(local, "golang", "7071"), false},
		{"local.settings string port", s.localSettings, fmt.Sprintf(local, "custom", `"7071"`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.schema, []byte(tc.doc))
			var verr *jsonschema.ValidationError
			switch {
			case tc.valid && err != nil:
				t.Errorf("rejected a valid document:\n%v", err)
			case !tc.valid && err == nil:
				t.Errorf("accepted a broken document:\n%s", tc.doc)
			case !tc.valid && !errors.As(err, &verr) && !strings.HasPrefix(err.Error(), "not JSON"):
				t.Errorf("rejected for another reason than validation: %v", err)
			}
		})
	}
}

// timerDoc is a timer function.json with the given direction and schedule
// (JSON).
func timerDoc(direction, schedule string) string {
	return `{"bindings": [{"type": "timerTrigger", "direction": "` + direction + `", "name": "timer", "schedule": ` + schedule +
		`, "runOnStartup": false, "useMonitor": true}]}`
}

// TestTimerFunctionChecks shows the timer checks above can fail: each
// document is one mistake away from a valid one.
func TestTimerFunctionChecks(t *testing.T) {
	settings := []string{"AUDIT_SWEEP_SCHEDULE", "OTHER"}
	examples := map[string]any{"AUDIT_SWEEP_SCHEDULE": "0 */1 * * * *", "OTHER": "*/5 * * * *"}
	parse := func(doc string) functionJSON {
		var fn functionJSON
		if err := json.Unmarshal([]byte(doc), &fn); err != nil {
			t.Fatal(err)
		}
		return fn
	}
	const http = `{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "route": "sweep", "methods": ["post"]}`
	for _, tc := range []struct {
		name, function, doc string
		want                string // "" means valid
	}{
		{"valid", "sweep", timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), ""},
		{"named api", "api", timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), "where the HTTP routes live"},
		{"named API", "API", timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), "where the HTTP routes live"},
		{"bad name", "sweep.v2", timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), "not a function name"},
		{"literal schedule", "sweep", timerDoc("in", `"0 */5 * * * *"`), "must name an app setting"},
		{"partial reference", "sweep", timerDoc("in", `"0 %MINUTES% * * * *"`), "must name an app setting"},
		{"unknown setting", "sweep", timerDoc("in", `"%AUDIT_SWEEP_CRON%"`), "not in taskapi.Settings"},
		{"example not a schedule", "sweep", timerDoc("in", `"%OTHER%"`), "the example's OTHER is not a schedule"},
		{"run on startup", "sweep", strings.Replace(timerDoc("in", `"%AUDIT_SWEEP_SCHEDULE%"`), `"runOnStartup": false`, `"runOnStartup": true`, 1), "runOnStartup"},
		{"with an HTTP trigger", "sweep", `{"bindings": [` + http + `, {"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "%AUDIT_SWEEP_SCHEDULE%"}]}`,
			"exactly one binding"},
		{"with an output", "sweep", `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "%AUDIT_SWEEP_SCHEDULE%"}, {"type": "queue", "direction": "out", "name": "q"}]}`,
			"exactly one binding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := checkTimerFunction(tc.function, parse(tc.doc), "taskapi", settings, examples)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("rejected a valid function: %v", problems)
			case tc.want != "" && !strings.Contains(strings.Join(problems, "\n"), tc.want):
				t.Errorf("problems %v, want one containing %q", problems, tc.want)
			}
		})
	}
}
