package infra

// A reader of the Bicep these templates use, enough for the tests to check
// them: declarations (param, var, resource, module, output) with their
// decorators, object and array literals, for-expressions, string literals,
// nested resources, and everything else kept as the expression's source
// text. It is deliberately small: a construct it does not know is an error,
// not a guess, so the templates stay within what the tests can read.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bicepFile is one parsed .bicep file.
type bicepFile struct {
	path       string
	decls      []*decl
	extensions []string
	imports    []string // the import statements, as written
}

// decl is a top-level declaration, or a resource nested in a resource body.
type decl struct {
	kind       string // param, var, resource, module, output, targetScope
	name       string // symbolic name
	typ        string // param/output type, resource type@version, module path
	existing   bool   // resource ... existing
	condition  string // the text of if (...), without the parentheses
	decorators []string
	value      *expr // nil for a param without a default
	parent     *decl // for a nested resource
	file       *bicepFile
	line       int
}

// expr is an expression: an object, an array, a for-expression, a string
// literal, or anything else (raw only).
type expr struct {
	raw     string // the source text, trimmed
	obj     *object
	arr     []*expr
	forBody *expr // [for ... : body]
	forHead string
	lit     *string // a string literal without interpolation
	line    int
}

// object is an object literal: properties in order, and nested resources.
type object struct {
	keys      []string
	props     map[string]*expr
	resources []*decl
}

func (e *expr) str() (string, bool) {
	if e == nil || e.lit == nil {
		return "", false
	}
	return *e.lit, true
}

// get follows a dotted path of object keys.
func (e *expr) get(path string) *expr {
	cur := e
	for _, k := range strings.Split(path, ".") {
		if cur == nil || cur.obj == nil {
			return nil
		}
		cur = cur.obj.props[k]
	}
	return cur
}

// strings returns an array's string literals.
func (e *expr) strings() ([]string, bool) {
	if e == nil || e.arr == nil && e.raw != "[]" {
		return nil, false
	}
	var out []string
	for _, it := range e.arr {
		s, ok := it.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// resources returns the file's resources, nested ones included, of types
// starting with typePrefix (e.g. "Microsoft.Graph/applications@").
func (f *bicepFile) resources(typePrefix string) []*decl {
	var out []*decl
	var walk func(d *decl)
	walk = func(d *decl) {
		if d.kind == "resource" && strings.HasPrefix(d.fullType(), typePrefix) {
			out = append(out, d)
		}
		if d.value != nil {
			body := d.value
			if body.forBody != nil {
				body = body.forBody
			}
			if body.obj != nil {
				for _, c := range body.obj.resources {
					walk(c)
				}
			}
		}
	}
	for _, d := range f.decls {
		walk(d)
	}
	return out
}

// fullType is a resource's type with a nested resource's parent's type
// prefixed, as ARM names it (Microsoft.Web/sites/config@2024-04-01).
func (d *decl) fullType() string {
	if d.parent == nil || strings.Contains(d.typ, "/") {
		return d.typ
	}
	ptype, _, _ := strings.Cut(d.parent.fullType(), "@")
	return ptype + "/" + d.typ
}

// body is a resource's or module's object (the loop body for a loop).
func (d *decl) body() *expr {
	if d.value != nil && d.value.forBody != nil {
		return d.value.forBody
	}
	return d.value
}

func (f *bicepFile) find(kind, name string) *decl {
	for _, d := range f.decls {
		if d.kind == kind && d.name == name {
			return d
		}
	}
	return nil
}

func (f *bicepFile) all(kind string) []*decl {
	var out []*decl
	for _, d := range f.decls {
		if d.kind == kind {
			out = append(out, d)
		}
	}
	return out
}

// parseBicepFile reads and parses path.
func parseBicepFile(path string) (*bicepFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parseBicep(filepath.ToSlash(path), string(src))
	if err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	src  string
	pos  int
	file *bicepFile
}

type parseError struct {
	path string
	line int
	msg  string
}

func (e *parseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.path, e.line, e.msg) }

func (p *parser) fail(format string, args ...any) {
	panic(&parseError{p.file.path, p.line(p.pos), fmt.Sprintf(format, args...)})
}

func (p *parser) line(pos int) int { return strings.Count(p.src[:pos], "\n") + 1 }

// parseBicep parses src, the contents of the file at path.
func parseBicep(path, src string) (f *bicepFile, err error) {
	f = &bicepFile{path: path}
	p := &parser{src: strings.ReplaceAll(src, "\r\n", "\n"), file: f}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*parseError)
			if !ok {
				panic(r)
			}
			f, err = nil, pe
		}
	}()
	var decorators []string
	for {
		p.skipSpace(true)
		if p.pos >= len(p.src) {
			if len(decorators) > 0 {
				p.fail("decorators without a declaration")
			}
			return f, nil
		}
		if p.src[p.pos] == '@' {
			start := p.pos
			p.pos++
			p.ident()
			p.skipSpace(false)
			if p.peek() == '(' {
				p.balanced()
			}
			decorators = append(decorators, p.src[start:p.pos])
			continue
		}
		start := p.pos
		kw := p.ident()
		d := &decl{kind: kw, decorators: decorators, file: f, line: p.line(start)}
		decorators = nil
		switch kw {
		case "targetScope":
			p.expect('=')
			d.value = p.value()
		case "extension":
			f.extensions = append(f.extensions, p.ident())
			continue
		case "import":
			p.skipSpace(false)
			if p.peek() == '{' {
				p.balanced()
			}
			p.restOfLine()
			f.imports = append(f.imports, strings.TrimSpace(p.src[start:p.pos]))
			continue
		case "param", "output":
			d.name = p.ident()
			d.typ = p.typeText()
			p.skipSpace(false)
			if p.peek() == '=' {
				p.pos++
				d.value = p.value()
			} else if kw == "output" {
				p.fail("output %s has no value", d.name)
			}
		case "var":
			d.name = p.ident()
			p.expect('=')
			d.value = p.value()
		case "resource", "module":
			p.declHead(d)
		default:
			p.fail("unknown declaration %q", kw)
		}
		f.decls = append(f.decls, d)
	}
}

// declHead parses a resource or module after its keyword: the symbol, the
// type or path, existing, = [if (cond)] value.
func (p *parser) declHead(d *decl) {
	d.name = p.ident()
	p.skipSpace(false)
	t := p.stringExpr()
	typ, ok := t.str()
	if !ok {
		p.fail("%s %s: the type must be a string literal", d.kind, d.name)
	}
	d.typ = typ
	p.skipSpace(false)
	if p.hasWord("existing") {
		p.ident()
		d.existing = true
	}
	p.expect('=')
	p.skipSpace(false)
	if p.hasWord("if") {
		p.ident()
		p.skipSpace(false)
		start := p.pos
		p.balanced()
		d.condition = strings.TrimSpace(p.src[start+1 : p.pos-1])
	}
	d.value = p.value()
	body := d.body()
	if body == nil || body.obj == nil {
		p.fail("%s %s: the body must be an object", d.kind, d.name)
	}
	for _, c := range body.obj.resources {
		c.parent = d
	}
}

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) hasWord(w string) bool {
	if !strings.HasPrefix(p.src[p.pos:], w) {
		return false
	}
	end := p.pos + len(w)
	return end >= len(p.src) || !isIdent(p.src[end])
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipSpace skips blanks and comments, and line breaks if newlines is set.
// A #disable-next-line (or any # directive) line counts as a comment.
func (p *parser) skipSpace(newlines bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '\n':
			if !newlines {
				return
			}
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "//"):
			p.restOfLine()
		case strings.HasPrefix(p.src[p.pos:], "/*"):
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				p.fail("unterminated comment")
			}
			p.pos += end + 4
		case c == '#' && newlines:
			p.restOfLine()
		default:
			return
		}
	}
}

func (p *parser) restOfLine() {
	if i := strings.IndexByte(p.src[p.pos:], '\n'); i >= 0 {
		p.pos += i
	} else {
		p.pos = len(p.src)
	}
}

func (p *parser) ident() string {
	p.skipSpace(false)
	start := p.pos
	for p.pos < len(p.src) && isIdent(p.src[p.pos]) {
		p.pos++
	}
	if start == p.pos {
		p.fail("want a name, found %q", p.snippet())
	}
	return p.src[start:p.pos]
}

func (p *parser) snippet() string {
	end := min(p.pos+20, len(p.src))
	return p.src[p.pos:end]
}

func (p *parser) expect(c byte) {
	p.skipSpace(false)
	if p.peek() != c {
		p.fail("want %q, found %q", c, p.snippet())
	}
	p.pos++
}

// typeText reads a param or output type up to = or the end of the line.
func (p *parser) typeText() string {
	p.skipSpace(false)
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] != '=' && p.src[p.pos] != '\n' && !strings.HasPrefix(p.src[p.pos:], "//") {
		p.pos++
	}
	return strings.TrimSpace(p.src[start:p.pos])
}

// balanced skips a bracketed group starting at the current ( [ or {.
func (p *parser) balanced() {
	depth := 0
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\'':
			p.stringExpr()
			continue
		case strings.HasPrefix(p.src[p.pos:], "//"):
			p.restOfLine()
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth == 0 {
				p.pos++
				return
			}
		}
		p.pos++
	}
	p.fail("unbalanced brackets")
}

// stringExpr reads a string: '...' with escapes and ${} interpolation, or
// a triple-quoted multi-line string (verbatim).
func (p *parser) stringExpr() *expr {
	start := p.pos
	if strings.HasPrefix(p.src[p.pos:], "'''") {
		end := strings.Index(p.src[p.pos+3:], "'''")
		if end < 0 {
			p.fail("unterminated multi-line string")
		}
		p.pos += end + 6
		lit := p.src[start+3 : p.pos-3]
		return &expr{raw: p.src[start:p.pos], lit: &lit, line: p.line(start)}
	}
	if p.peek() != '\'' {
		p.fail("want a string, found %q", p.snippet())
	}
	p.pos++
	var b strings.Builder
	interpolated := false
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			p.pos = start
			p.fail("unterminated string")
		}
		c := p.src[p.pos]
		switch {
		case c == '\\' && p.pos+1 < len(p.src):
			switch n := p.src[p.pos+1]; n {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default: // \\ \' \$
				b.WriteByte(n)
			}
			p.pos += 2
		case c == '\'':
			p.pos++
			raw := p.src[start:p.pos]
			if interpolated {
				return &expr{raw: raw, line: p.line(start)}
			}
			lit := b.String()
			return &expr{raw: raw, lit: &lit, line: p.line(start)}
		case strings.HasPrefix(p.src[p.pos:], "${"):
			interpolated = true
			p.pos++
			p.balanced()
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// value reads an expression: an object, an array or for-expression, a
// string literal, or else raw text up to the end of the line (or a , ] }
// or ) that closes the enclosing group).
func (p *parser) value() *expr {
	p.skipSpace(false)
	start := p.pos
	var e *expr
	switch c := p.peek(); {
	case c == '{':
		e = p.object()
	case c == '[':
		e = p.array()
	case c == '\'':
		e = p.stringExpr()
	}
	if e != nil {
		p.skipSpace(false)
		if c := p.peek(); c == '\n' || c == 0 || c == ',' || c == '}' || c == ']' || c == ')' {
			return e
		}
		// More follows (an operator, a member access): it is raw after all.
		p.pos = start
	}
	p.rawUntilEnd()
	raw := strings.TrimSpace(p.src[start:p.pos])
	if raw == "" {
		p.fail("missing expression")
	}
	return &expr{raw: raw, line: p.line(start)}
}

func (p *parser) rawUntilEnd() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n' || c == ',' || c == '}' || c == ']' || c == ')':
			return
		case strings.HasPrefix(p.src[p.pos:], "//"):
			return
		case c == '\'':
			p.stringExpr()
		case c == '(' || c == '[' || c == '{':
			p.balanced()
		default:
			p.pos++
		}
	}
}

func (p *parser) object() *expr {
	start := p.pos
	p.pos++ // {
	o := &object{props: map[string]*expr{}}
	for {
		p.skipSpace(true)
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if p.peek() == '}' {
			p.pos++
			return &expr{raw: p.src[start:p.pos], obj: o, line: p.line(start)}
		}
		if p.pos >= len(p.src) {
			p.fail("unterminated object")
		}
		if p.peek() == '@' { // a decorator on a property (descriptions)
			p.pos++
			p.ident()
			if p.skipSpace(false); p.peek() == '(' {
				p.balanced()
			}
			continue
		}
		if p.hasWord("resource") {
			save := p.pos
			p.ident()
			p.skipSpace(false)
			if isIdent(p.peek()) { // resource <symbol> '<type>' = ...
				d := &decl{kind: "resource", file: p.file, line: p.line(save)}
				p.declHead(d)
				o.resources = append(o.resources, d)
				continue
			}
			p.pos = save
		}
		var key string
		if p.peek() == '\'' {
			k := p.stringExpr()
			if s, ok := k.str(); ok {
				key = s
			} else {
				key = k.raw
			}
		} else {
			key = p.ident()
		}
		p.expect(':')
		if _, dup := o.props[key]; dup {
			p.fail("duplicate property %q", key)
		}
		o.keys = append(o.keys, key)
		o.props[key] = p.value()
	}
}

func (p *parser) array() *expr {
	start := p.pos
	p.pos++ // [
	p.skipSpace(true)
	if p.hasWord("for") {
		headStart := p.pos
		// The header runs to the first ':' outside brackets and strings.
		for p.pos < len(p.src) && p.src[p.pos] != ':' {
			switch p.src[p.pos] {
			case '\'':
				p.stringExpr()
			case '(', '[', '{':
				p.balanced()
			default:
				p.pos++
			}
		}
		head := strings.TrimSpace(p.src[headStart:p.pos])
		p.pos++ // :
		body := p.value()
		p.skipSpace(true)
		if p.peek() != ']' {
			p.fail("want ] after a for-expression's body")
		}
		p.pos++
		return &expr{raw: p.src[start:p.pos], forBody: body, forHead: head, line: p.line(start)}
	}
	e := &expr{arr: []*expr{}, line: p.line(start)}
	for {
		p.skipSpace(true)
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if p.peek() == ']' {
			p.pos++
			e.raw = p.src[start:p.pos]
			return e
		}
		if p.pos >= len(p.src) {
			p.fail("unterminated array")
		}
		e.arr = append(e.arr, p.value())
	}
}
