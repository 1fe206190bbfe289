// Package tracetree prints one trace's spans as a tree, for `devstack
// trace` and `make demo`: one line per span with its app (service.name),
// name, duration and outcome, children indented under their parent and
// ordered by start time.
//
// A span whose parent was not received (an orphan: its parent's app does
// not export, or the parent is the caller's, as with a traceparent sent by
// curl) is printed at the root level, marked. Each link is a line under its
// span: "↪ linked from <trace>/<span>".
package tracetree

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// indent is one level of the tree.
const indent = "  "

// Write prints spans (of one trace) as a tree on w, under a header line.
func Write(w io.Writer, spans []otlpsink.Span) error {
	t := newTree(spans)
	t.rows = append(t.rows, []string{"APP", "SPAN", "DURATION", "OUTCOME"})
	for _, root := range t.roots {
		t.add(root, 0)
	}
	// Spans no root reaches: their parents form a cycle.
	for _, s := range t.byStart {
		if !t.added[s.SpanID] {
			t.marks[s.SpanID] = "[orphan: its parents form a cycle]"
			t.add(s, 0)
		}
	}
	return t.print(w)
}

// gap separates columns.
const gap = "  "

// print writes the rows with their columns aligned; a link row (one cell)
// takes no part in the widths.
func (t *tree) print(w io.Writer) error {
	var widths [4]int
	for _, r := range t.rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r[:len(widths)] {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			last := i == len(r)-1
			b.WriteString(c)
			if !last && i < len(widths) {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + gap)
			} else if !last {
				b.WriteString(gap)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tree is spans indexed for printing.
type tree struct {
	byStart  []otlpsink.Span
	children map[string][]otlpsink.Span // by parent span id
	roots    []otlpsink.Span            // roots and orphans, by start
	marks    map[string]string          // span id → mark after its outcome
	added    map[string]bool
	rows     [][]string // app, span, duration, outcome[, mark]; or a link line
}

func newTree(spans []otlpsink.Span) *tree {
	t := &tree{byStart: slices.Clone(spans), children: map[string][]otlpsink.Span{}, marks: map[string]string{}, added: map[string]bool{}}
	slices.SortStableFunc(t.byStart, func(a, b otlpsink.Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	ids := map[string]bool{}
	for _, s := range t.byStart {
		ids[s.SpanID] = true
	}
	for _, s := range t.byStart {
		switch {
		case s.ParentSpanID == "":
			t.roots = append(t.roots, s)
		case !ids[s.ParentSpanID]:
			t.roots = append(t.roots, s)
			t.marks[s.SpanID] = "[orphan: parent " + s.ParentSpanID + " not received]"
		default:
			t.children[s.ParentSpanID] = append(t.children[s.ParentSpanID], s)
		}
	}
	return t
}

// add adds the rows of s at depth, of its links, then of its children.
func (t *tree) add(s otlpsink.Span, depth int) {
	if t.added[s.SpanID] {
		return
	}
	t.added[s.SpanID] = true
	pad := strings.Repeat(indent, depth)
	row := []string{pad + s.Service, s.Name, FormatDuration(s), Outcome(s)}
	if m := t.marks[s.SpanID]; m != "" {
		row = append(row, m)
	}
	t.rows = append(t.rows, row)
	for _, l := range s.Links {
		t.rows = append(t.rows, []string{fmt.Sprintf("%s%s↪ linked from %s/%s", pad, indent, l.TraceID, l.SpanID)})
	}
	for _, c := range t.children[s.SpanID] {
		t.add(c, depth+1)
	}
}

// Outcome is what a span says of how it went: its `outcome` attribute, its
// HTTP status (http.response.status_code) and an error status with its
// message (or error.type), joined by commas; "ok" for an OK status with
// nothing else; "-" when it says nothing.
func Outcome(s otlpsink.Span) string {
	var parts []string
	if v := s.Attributes["outcome"]; v != "" {
		parts = append(parts, v)
	}
	if v := s.Attributes["http.response.status_code"]; v != "" {
		parts = append(parts, "HTTP "+v)
	}
	switch s.Status {
	case "error":
		msg := cmp.Or(s.StatusMessage, s.Attributes["error.type"])
		if msg != "" {
			msg = ": " + msg
		}
		parts = append(parts, "error"+msg)
	case "ok":
		if len(parts) == 0 {
			parts = append(parts, "ok")
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// FormatDuration is a span's duration for reading: µs under a
// millisecond, ms with one decimal under a second, else seconds; "?" when
// its times are missing or out of order.
func FormatDuration(s otlpsink.Span) string {
	if s.Start.IsZero() || s.End.IsZero() || s.End.Before(s.Start) {
		return "?"
	}
	d := s.End.Sub(s.Start)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// Apps are the services of spans, in order of first start.
func Apps(spans []otlpsink.Span) []string {
	sorted := slices.Clone(spans)
	slices.SortStableFunc(sorted, func(a, b otlpsink.Span) int { return a.Start.Compare(b.Start) })
	var apps []string
	for _, s := range sorted {
		if !slices.Contains(apps, s.Service) {
			apps = append(apps, s.Service)
		}
	}
	return apps
}
