package docs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository root, seen from this package's folder.
const repoRoot = ".."

// pathDirs are the top-level folders whose paths, named in backticks, the
// docs promise exist. A backticked word that starts with one of them and
// has no space is taken for a repository path.
var pathDirs = []string{"handler", "internal", "emulator", "cmd", "functions", "infra", "web", "e2e", "docs", "examples", ".ci"}

// TestDocs checks README.md and docs/*.md: every relative link (and its
// #anchor, in a Markdown file) resolves, and every repository path named in
// backticks exists (or is a build output that .gitignore lists).
func TestDocs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(repoRoot, "README.md")}, files...)
	c := newChecker(t, repoRoot)
	for _, f := range files {
		rel, err := filepath.Rel(repoRoot, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.check(filepath.ToSlash(rel)) {
			t.Error(p)
		}
	}
}

// TestCheckerFindsProblems shows the checks above can fail: a small tree
// with one mistake of each kind beside correct references.
func TestCheckerFindsProblems(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".gitignore", "web/dist/\nnode_modules/\n")
	write("handler/entraauth/validator.go", "package entraauth\n")
	write("internal/taskapi/routes.go", "package taskapi\n")
	write("docs/other.md", "# Other\n\n## The app's credential\n\n## Twice\n\n## Twice\n")
	write("README.md", strings.Join([]string{
		"# Title", // 1
		"See [other](docs/other.md), [cred](docs/other.md#the-apps-credential), [top](#title).", // 2
		"Broken: [gone](docs/gone.md) and [bad anchor](docs/other.md#nowhere).",                 // 3
		"Second heading: [twice](docs/other.md#twice-1), external [x](https://example.com).",    // 4
		"Paths: `handler/entraauth/validator.go`, `internal/*api/routes.go`, `web/dist`,",       // 5
		"`web/node_modules/x`, `./handler/entraauth`, `cmd/<name>/`, `go run ./cmd/x`.",         // 6
		"Missing: `handler/nothing.go` and `internal/*api/nope.go`.",                            // 7
		"```sh", // 8
		"ls handler/ignored-in-a-code-block [no](nowhere.md)", // 9
		"```", // 10
		"A span across lines: `handler/entraauth/", // 11
		"missing.go`; a [local anchor](#nope).",    // 12
	}, "\n")+"\n")
	// cmd/ does not exist at all in this tree.
	got := newChecker(t, root).check("README.md")
	want := []string{
		`README.md:3: link "docs/gone.md": docs/gone.md does not exist`,
		`README.md:3: link "docs/other.md#nowhere": docs/other.md has no heading with anchor #nowhere`,
		"README.md:6: `cmd/<name>/` names cmd/*/, which matches nothing in the repository",
		"README.md:7: `handler/nothing.go` names handler/nothing.go, which does not exist",
		"README.md:7: `internal/*api/nope.go` names internal/*api/nope.go, which matches nothing in the repository",
		"README.md:11: `handler/entraauth/ missing.go` breaks a path across lines; keep it on one line",
		`README.md:12: link "#nope": README.md has no heading with anchor #nope`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Validating tokens: `handler/entraauth`":                                  "validating-tokens-handlerentraauth",
		"The app's credential":                                                    "the-apps-credential",
		"consent_required (AADSTS65001)":                                          "consent_required-aadsts65001",
		"An audit trail that loses nothing (transactional outbox)":                "an-audit-trail-that-loses-nothing-transactional-outbox",
		"Running an app under the real `func start`":                              "running-an-app-under-the-real-func-start",
		"Calling downstream services: `handler/downstream` and `handler/secrets`": "calling-downstream-services-handlerdownstream-and-handlersecrets",
		"See [the docs](docs/x.md) — now":                                         "see-the-docs--now",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// checker checks the Markdown files of one repository tree.
type checker struct {
	t       *testing.T
	root    string
	ignored []string            // .gitignore patterns
	anchors map[string][]string // Markdown file → its anchors, read once
}

func newChecker(t *testing.T, root string) *checker {
	t.Helper()
	c := &checker{t: t, root: root, anchors: map[string][]string{}}
	b, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "!") {
			c.ignored = append(c.ignored, line)
		}
	}
	return c
}

var (
	fenceLine = regexp.MustCompile("^ {0,3}(```|~~~)")
	// codeSpan is an inline code span; it may wrap lines but not cross a
	// blank line.
	codeSpan = regexp.MustCompile("(`+)((?:[^`\\n]|\\n[^\\n`])+?)`+")
	// link is an inline link or image: [text](target "title").
	link = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition: [label]: target.
	refDef    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	heading   = regexp.MustCompile(`(?m)^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	htmlID    = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	scheme    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	linkInner = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// check lists the problems of the Markdown file name (slash-separated,
// relative to the root), each as "file:line: what".
func (c *checker) check(name string) []string {
	text := c.prose(name)
	type problem struct {
		line int
		what string
	}
	var found []problem
	report := func(offset int, format string, args ...any) {
		found = append(found, problem{strings.Count(text[:offset], "\n") + 1, fmt.Sprintf(format, args...)})
	}
	// Links are looked for outside code spans, which are blanked byte by
	// byte (newlines kept, so offsets and lines stay right).
	blank := []byte(text)
	for _, m := range codeSpan.FindAllStringSubmatchIndex(text, -1) {
		span := text[m[4]:m[5]]
		if p := c.checkPath(span); p != "" {
			report(m[0], "`%s` %s", strings.ReplaceAll(span, "\n", " "), p)
		}
		for i := m[0]; i < m[1]; i++ {
			if blank[i] != '\n' {
				blank[i] = ' '
			}
		}
	}
	blanked := string(blank)
	var links [][]int
	links = append(links, link.FindAllStringSubmatchIndex(blanked, -1)...)
	links = append(links, refDef.FindAllStringSubmatchIndex(blanked, -1)...)
	slices.SortFunc(links, func(a, b []int) int { return a[0] - b[0] })
	for _, m := range links {
		target := blanked[m[2]:m[3]]
		if p := c.checkLink(name, target); p != "" {
			report(m[0], "link %q: %s", target, p)
		}
	}
	slices.SortStableFunc(found, func(a, b problem) int { return a.line - b.line })
	var problems []string
	for _, p := range found {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", name, p.line, p.what))
	}
	return problems
}

// prose is the file's text with fenced code blocks blanked (their lines
// kept empty, so line numbers stay right).
func (c *checker) prose(name string) string {
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(name)))
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	lines := strings.Split(string(b), "\n")
	fence := ""
	for i, l := range lines {
		m := fenceLine.FindStringSubmatch(l)
		switch {
		case fence == "" && m != nil:
			fence = m[1]
			lines[i] = ""
		case fence != "":
			if m != nil && m[1] == fence {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// checkLink explains what is wrong with a link target in the file from,
// or returns "".
func (c *checker) checkLink(from, target string) string {
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // external: not this test's business
	}
	file, anchor, _ := strings.Cut(target, "#")
	resolved := from
	if file != "" {
		resolved = path.Clean(path.Join(path.Dir(from), file))
		if strings.HasPrefix(resolved, "../") || resolved == ".." {
			return "it points outside the repository"
		}
		if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(resolved))); err != nil {
			return resolved + " does not exist"
		}
	}
	if anchor == "" || !strings.HasSuffix(resolved, ".md") {
		return ""
	}
	if !slices.Contains(c.anchorsOf(resolved), anchor) {
		return fmt.Sprintf("%s has no heading with anchor #%s", resolved, anchor)
	}
	return ""
}

// anchorsOf lists the anchors GitHub makes for the file's headings (with
// -1, -2… for repeats) and its explicit <a id> anchors.
func (c *checker) anchorsOf(name string) []string {
	if a, ok := c.anchors[name]; ok {
		return a
	}
	text := c.prose(name)
	var anchors []string
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			anchors = append(anchors, fmt.Sprintf("%s-%d", s, n))
		} else {
			anchors = append(anchors, s)
		}
		seen[s]++
	}
	for _, m := range htmlID.FindAllStringSubmatch(text, -1) {
		anchors = append(anchors, m[1])
	}
	c.anchors[name] = anchors
	return anchors
}

// slug is GitHub's anchor for a heading: its text (a link's text, not its
// target) lower-cased, spaces turned to hyphens, and every character but
// letters, digits, marks, hyphens and underscores dropped.
func slug(h string) string {
	h = linkInner.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkPath explains what is wrong with a code span that names a
// repository path, or returns "" (also for a span that names none).
func (c *checker) checkPath(span string) string {
	p := strings.TrimPrefix(strings.TrimSpace(span), "./")
	p = strings.TrimSuffix(p, "/...")
	first, _, found := strings.Cut(p, "/")
	if !found || strings.ContainsAny(p, " \t") || !slices.Contains(pathDirs, first) {
		return ""
	}
	if strings.Contains(p, "\n") {
		// It renders with a space where the line breaks: no such path.
		return "breaks a path across lines; keep it on one line"
	}
	// <app>, {name} and * stand for any one path segment.
	pattern := regexp.MustCompile(`<[^>/]*>|\{[^}/]*\}`).ReplaceAllString(p, "*")
	if c.isIgnored(pattern) {
		return "" // a build output (web/dist, …): it exists after a build
	}
	full := filepath.Join(c.root, filepath.FromSlash(strings.TrimSuffix(pattern, "/")))
	if !strings.ContainsAny(pattern, "*?[") {
		if _, err := os.Stat(full); err != nil {
			return fmt.Sprintf("names %s, which does not exist", pattern)
		}
		return ""
	}
	matches, err := filepath.Glob(full)
	if err != nil || len(matches) == 0 {
		return fmt.Sprintf("names %s, which matches nothing in the repository", pattern)
	}
	return ""
}

// isIgnored reports whether p (slash-separated, from the root) or a
// folder above it matches a .gitignore pattern: a pattern with a slash is
// anchored at the root, one without matches any one segment.
func (c *checker) isIgnored(p string) bool {
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for _, pat := range c.ignored {
		pat = strings.TrimSuffix(pat, "/")
		if strings.Contains(pat, "/") {
			parts := strings.Split(strings.TrimPrefix(pat, "/"), "/")
			if len(parts) <= len(segs) {
				if ok, _ := path.Match(strings.Join(parts, "/"), strings.Join(segs[:len(parts)], "/")); ok {
					return true
				}
			}
			continue
		}
		for _, s := range segs {
			if ok, _ := path.Match(pat, s); ok {
				return true
			}
		}
	}
	return false
}
