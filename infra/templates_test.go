package infra

// Loading the templates, and following references between them.

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// templates are the parsed Bicep files.
type templates struct {
	main    *bicepFile
	modules map[string]*bicepFile // by file name, e.g. functionapp.bicep
}

func loadTemplates(t *testing.T) *templates {
	t.Helper()
	main, err := parseBicepFile("main.bicep")
	if err != nil {
		t.Fatal(err)
	}
	tpl := &templates{main: main, modules: map[string]*bicepFile{}}
	paths, err := filepath.Glob(filepath.Join("modules", "*.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		f, err := parseBicepFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tpl.modules[filepath.Base(p)] = f
	}
	// Every module main.bicep (or a module) names must exist.
	for _, f := range tpl.files() {
		for _, m := range f.all("module") {
			if tpl.modules[filepath.Base(m.typ)] == nil {
				t.Fatalf("%s:%d: module %s names %s, which is not in modules/", f.path, m.line, m.name, m.typ)
			}
		}
	}
	return tpl
}

func (tpl *templates) module(t *testing.T, name string) *bicepFile {
	t.Helper()
	f := tpl.modules[name]
	if f == nil {
		t.Fatalf("modules/%s is missing", name)
	}
	return f
}

func (tpl *templates) files() []*bicepFile {
	out := []*bicepFile{tpl.main}
	for _, name := range sortedKeys(tpl.modules) {
		out = append(out, tpl.modules[name])
	}
	return out
}

// moduleCall is the declaration in f that deploys the module file named
// base (e.g. functionapp.bicep), if exactly one does.
func moduleCalls(f *bicepFile, base string) []*decl {
	var out []*decl
	for _, m := range f.all("module") {
		if filepath.Base(m.typ) == base {
			out = append(out, m)
		}
	}
	return out
}

var (
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	memberRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$`)
	spaceRE  = regexp.MustCompile(`\s+`)
)

// resolveVar follows a reference to a variable of f (name, or name.key for
// an object variable) to the expression it stands for, as many times as it
// takes; any other expression is returned as it is.
func resolveVar(f *bicepFile, e *expr) *expr {
	for range 10 {
		if e == nil || e.obj != nil || e.arr != nil || e.lit != nil {
			return e
		}
		if identRE.MatchString(e.raw) {
			v := f.find("var", e.raw)
			if v == nil {
				return e
			}
			e = v.value
			continue
		}
		if m := memberRE.FindStringSubmatch(e.raw); m != nil {
			v := f.find("var", m[1])
			if v == nil || v.value.obj == nil || v.value.obj.props[m[2]] == nil {
				return e
			}
			e = v.value.obj.props[m[2]]
			continue
		}
		return e
	}
	return e
}

// substituteParams copies e with every expression that is just the name of
// one of params replaced by its value: a module's view of its parameters
// turned into its caller's expressions.
func substituteParams(e *expr, params map[string]*expr) *expr {
	if e == nil {
		return nil
	}
	if e.obj == nil && e.arr == nil && e.forBody == nil && e.lit == nil {
		if v, ok := params[e.raw]; ok {
			return v
		}
		return e
	}
	c := *e
	if e.obj != nil {
		o := &object{keys: e.obj.keys, props: map[string]*expr{}, resources: e.obj.resources}
		for k, v := range e.obj.props {
			o.props[k] = substituteParams(v, params)
		}
		c.obj = o
	}
	if e.arr != nil {
		c.arr = nil
		for _, it := range e.arr {
			c.arr = append(c.arr, substituteParams(it, params))
		}
	}
	if e.forBody != nil {
		c.forBody = substituteParams(e.forBody, params)
	}
	return &c
}

// params is a module call's params object.
func params(m *decl) map[string]*expr {
	p := m.body().get("params")
	if p == nil || p.obj == nil {
		return nil
	}
	return p.obj.props
}

// canonical is an expression's text with its whitespace collapsed.
func canonical(e *expr) string {
	if e == nil {
		return ""
	}
	return spaceRE.ReplaceAllString(strings.TrimSpace(e.raw), " ")
}

// render is an expression's canonical text, rebuilt from its parts (so
// that substituted parameters show).
func render(e *expr) string {
	switch {
	case e == nil:
		return ""
	case e.obj != nil:
		var b strings.Builder
		b.WriteString("{")
		for _, k := range e.obj.keys {
			b.WriteString(" " + k + ": " + render(e.obj.props[k]))
		}
		return b.String() + " }"
	case e.forBody != nil:
		return "[" + e.forHead + ": " + render(e.forBody) + "]"
	case e.arr != nil:
		var parts []string
		for _, it := range e.arr {
			parts = append(parts, render(it))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return canonical(e)
}

// symbolRef returns sym when e is exactly sym.<member>.
func symbolRef(e *expr, member string) (string, bool) {
	if e == nil {
		return "", false
	}
	m := memberRE.FindStringSubmatch(e.raw)
	if m == nil || m[2] != member {
		return "", false
	}
	return m[1], true
}

// indexedOutput parses identities.outputs.identities[<i>].<member>.
var indexedOutputRE = regexp.MustCompile(`^([A-Za-z_]\w*)\.outputs\.([A-Za-z_]\w*)\[(\d+)\]\.([A-Za-z_]\w*)$`)
