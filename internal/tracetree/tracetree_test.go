package tracetree_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/otlpsink"
	"github.com/handoff-dev/handoff/internal/tracetree"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// sp is a span starting at t0+start ms, lasting dur ms.
func sp(service, id, parent, name string, start, dur int, attrs ...string) otlpsink.Span {
	s := otlpsink.Span{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: id, ParentSpanID: parent, Service: service, Name: name,
		Start: t0.Add(time.Duration(start) * time.Millisecond), End: t0.Add(time.Duration(start+dur) * time.Millisecond),
		Status: "unset", Attributes: map[string]string{},
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		s.Attributes[attrs[i]] = attrs[i+1]
	}
	return s
}

// line is one printed span: its depth, app, name and the rest.
type line struct {
	depth           int
	app, name, rest string
}

var spanLine = regexp.MustCompile(`^( *)(\S+) +(.+?)  +(\S+)  +(.*)$`)

// parse reads Write's output back: each span line, and each link line as
// its text (with its depth).
func parse(t *testing.T, out string) (spans []line, links []line) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "APP ") || !strings.Contains(lines[0], "OUTCOME") {
		t.Fatalf("no header: %q", lines[0])
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, "↪ ") {
			trimmed := strings.TrimLeft(l, " ")
			links = append(links, line{depth: (len(l) - len(trimmed)) / 2, rest: trimmed})
			continue
		}
		m := spanLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a span line: %q", l)
		}
		spans = append(spans, line{depth: len(m[1]) / 2, app: m[2], name: m[3], rest: m[4] + "  " + m[5]})
	}
	return spans, links
}

func write(t *testing.T, spans []otlpsink.Span) string {
	t.Helper()
	var b strings.Builder
	if err := tracetree.Write(&b, spans); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestTreeNestsByParentAndOrdersChildrenByStart(t *testing.T) {
	create := sp("task", "a1", "", "POST /api/tasks", 0, 40, "http.response.status_code", "201")
	audit := sp("task", "a3", "a1", "POST audit", 20, 10, "http.response.status_code", "200")
	notify := sp("task", "a2", "a1", "POST notify", 5, 10)
	served := sp("notification", "b1", "a2", "POST /api/notify", 6, 8, "http.response.status_code", "200")
	audited := sp("audit", "c1", "a3", "POST /api/audit", 21, 8, "outcome", "logged")
	token := sp("task", "a0", "a1", "token OBO", 1, 2, "cache", "miss")
	token.Status = "ok"
	// Given in no particular order.
	out := write(t, []otlpsink.Span{audited, served, audit, create, token, notify})
	spans, links := parse(t, out)
	want := []line{
		{0, "task", "POST /api/tasks", ""},
		{1, "task", "token OBO", ""},
		{1, "task", "POST notify", ""},
		{2, "notification", "POST /api/notify", ""},
		{1, "task", "POST audit", ""},
		{2, "audit", "POST /api/audit", ""},
	}
	if len(spans) != len(want) || len(links) != 0 {
		t.Fatalf("got\n%s", out)
	}
	for i, w := range want {
		if g := spans[i]; g.depth != w.depth || g.app != w.app || g.name != w.name {
			t.Errorf("line %d = %+v, want %+v\n%s", i+1, g, w, out)
		}
	}
	for i, rest := range []string{"40.0ms  HTTP 201", "2.0ms  ok", "10.0ms  -", "8.0ms  HTTP 200", "10.0ms  HTTP 200", "8.0ms  logged"} {
		if spans[i].rest != rest {
			t.Errorf("line %d ends %q, want %q", i+1, spans[i].rest, rest)
		}
	}
	if strings.Contains(out, "orphan") {
		t.Errorf("a complete trace has an orphan:\n%s", out)
	}
}

func TestOrphansAreRootsMarked(t *testing.T) {
	root := sp("task", "a1", "", "POST /api/tasks", 10, 40)
	// Its parent is the caller's span (curl's traceparent): not received.
	lost := sp("audit", "c1", "ffffffffffffffff", "POST /api/audit", 0, 5)
	child := sp("audit", "c2", "c1", "store put", 1, 1)
	out := write(t, []otlpsink.Span{root, child, lost})
	spans, _ := parse(t, out)
	if len(spans) != 3 {
		t.Fatalf("got\n%s", out)
	}
	if g := spans[0]; g.depth != 0 || g.name != "POST /api/audit" || !strings.HasSuffix(g.rest, "[orphan: parent ffffffffffffffff not received]") {
		t.Errorf("the orphan (earliest) is %+v, want it first, at the root, marked\n%s", g, out)
	}
	if g := spans[1]; g.depth != 1 || g.name != "store put" || strings.Contains(g.rest, "orphan") {
		t.Errorf("the orphan's child is %+v, want it under the orphan, unmarked", g)
	}
	if g := spans[2]; g.depth != 0 || g.name != "POST /api/tasks" || strings.Contains(g.rest, "orphan") {
		t.Errorf("the root is %+v, want an unmarked root", g)
	}
}

func TestLinksArePrintedUnderTheirSpan(t *testing.T) {
	sweep := sp("task", "d1", "", "sweep", 0, 30)
	re := sp("task", "d2", "d1", "outbox.redeliver", 5, 10)
	re.Links = []otlpsink.Link{{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"}}
	out := write(t, []otlpsink.Span{re, sweep})
	spans, links := parse(t, out)
	if len(spans) != 2 || len(links) != 1 {
		t.Fatalf("got\n%s", out)
	}
	if l := links[0]; l.rest != "↪ linked from 0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331" || l.depth != 2 {
		t.Errorf("link line = %+v, want it one level under its span (at depth 1)\n%s", l, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[2], "outbox.redeliver") || !strings.Contains(lines[3], "↪") {
		t.Errorf("the link does not follow its span:\n%s", out)
	}
}

func TestACycleEndsAndIsMarked(t *testing.T) {
	a := sp("task", "e1", "e2", "a", 0, 1)
	b := sp("task", "e2", "e1", "b", 1, 1)
	spans, _ := parse(t, write(t, []otlpsink.Span{a, b}))
	if len(spans) != 2 || spans[0].depth != 0 || !strings.Contains(spans[0].rest, "cycle") || spans[1].depth != 1 {
		t.Errorf("a parent cycle printed as %+v", spans)
	}
}

func TestOutcome(t *testing.T) {
	s := sp("task", "a1", "", "x", 0, 1, "http.response.status_code", "502", "outcome", "queued")
	s.Status, s.StatusMessage = "error", "the service answered 502"
	if got := tracetree.Outcome(s); got != "queued, HTTP 502, error: the service answered 502" {
		t.Errorf("Outcome = %q", got)
	}
	e := sp("task", "a1", "", "x", 0, 1, "error.type", "timeout")
	e.Status = "error"
	if got := tracetree.Outcome(e); got != "error: timeout" {
		t.Errorf("Outcome = %q", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		start, end time.Duration
		want       string
	}{
		{0, 250 * time.Microsecond, "250µs"},
		{0, 12340 * time.Microsecond, "12.3ms"},
		{0, 2500 * time.Millisecond, "2.50s"},
		{time.Second, 0, "?"},
	} {
		s := otlpsink.Span{Start: t0.Add(c.start), End: t0.Add(c.end)}
		if got := tracetree.FormatDuration(s); got != c.want {
			t.Errorf("%v→%v = %q, want %q", c.start, c.end, got, c.want)
		}
	}
	if got := tracetree.FormatDuration(otlpsink.Span{Start: t0}); got != "?" {
		t.Errorf("no end = %q", got)
	}
}

func TestApps(t *testing.T) {
	got := tracetree.Apps([]otlpsink.Span{sp("audit", "3", "", "", 30, 1), sp("task", "1", "", "", 0, 1), sp("notification", "2", "", "", 10, 1), sp("task", "4", "", "", 40, 1)})
	if !slices.Equal(got, []string{"task", "notification", "audit"}) {
		t.Errorf("Apps = %v", got)
	}
}
