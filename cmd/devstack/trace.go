package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/otlpsink"
	"github.com/handoff-dev/handoff/internal/tracetree"
)

// tracesLine is the banner's line on where the apps' spans go: to
// devstack's receiver at tracesURL, or to otlpEndpoint, or nowhere.
func tracesLine(tracesURL, otlpEndpoint string) string {
	switch {
	case tracesURL != "":
		return fmt.Sprintf("  Traces\t%s\t(the apps' OTLP; bin/devstack trace lists them, bin/devstack trace <trace id> prints one)", tracesURL)
	case otlpEndpoint != "":
		return fmt.Sprintf("  Traces\tsent to %s\t(%s from your environment; devstack keeps none)", otlpEndpoint, devstack.EnvOTLPEndpoint)
	}
	return "  Traces\toff\t(-no-traces: the apps export nothing)"
}

// traceClientTimeout bounds a question to the trace receiver.
const traceClientTimeout = 10 * time.Second

// defaultTraceList is how many traces `devstack trace` lists.
const defaultTraceList = 20

// traceCommand is `devstack trace [-state DIR] [-n N] [TRACE_ID]`: the
// tree of one trace, or the most recent traces, from the running
// devstack's trace receiver.
func traceCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devstack trace", flag.ContinueOnError)
	state := fs.String("state", "", "the running devstack's state directory (default <repo>/.state)")
	n := fs.Int("n", defaultTraceList, "how many recent traces to list")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: devstack trace [-state DIR] [-n N] [TRACE_ID]")
		return errUsage
	}
	id := ""
	if fs.NArg() == 1 {
		var err error
		if id, err = otlpsink.ParseTraceID(fs.Arg(0)); err != nil {
			fmt.Fprintf(os.Stderr, "devstack trace: %v\nusage: devstack trace [-state DIR] [-n N] [TRACE_ID]\n", err)
			return errUsage
		}
	}
	base, err := tracesURL(*state)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: traceClientTimeout}
	if id == "" {
		list, err := otlpsink.FetchRecent(ctx, hc, base, *n)
		if err != nil {
			return err
		}
		return writeTraceList(stdout, list)
	}
	t, err := otlpsink.FetchTrace(ctx, hc, base, id)
	if err != nil {
		return err
	}
	return writeTrace(stdout, t)
}

// tracesURL is the trace receiver of the devstack running with stateDir
// ("" means the repository's .state).
func tracesURL(stateDir string) (string, error) {
	if stateDir == "" {
		p, err := findPaths()
		if err != nil {
			return "", err
		}
		stateDir = p.state
	} else if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	info, err := readRunInfo(stateDir)
	if err != nil {
		return "", err
	}
	switch {
	case info.Traces != "":
		return info.Traces, nil
	case info.OTLPEndpoint != "":
		return "", fmt.Errorf("this devstack sends the apps' spans to %s (%s), not to itself: read them there", info.OTLPEndpoint, devstack.EnvOTLPEndpoint)
	}
	return "", errors.New("this devstack runs without its trace receiver (-no-traces): restart it without -no-traces")
}

// writeTrace prints a trace's header line and its tree.
func writeTrace(w io.Writer, t otlpsink.TraceResponse) error {
	spans := "spans"
	if len(t.Spans) == 1 {
		spans = "span"
	}
	fmt.Fprintf(w, "trace %s: %d %s from %s", t.TraceID, len(t.Spans), spans, strings.Join(tracetree.Apps(t.Spans), ", "))
	if t.DroppedSpans > 0 {
		fmt.Fprintf(w, " (%d more dropped: devstack keeps at most %d spans of a trace)", t.DroppedSpans, otlpsink.DefaultMaxSpansPerTrace)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	return tracetree.Write(w, t.Spans)
}

// writeTraceList prints the recent traces, newest first.
func writeTraceList(w io.Writer, list []otlpsink.TraceSummary) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no traces yet: the apps send their spans within a second of each request")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRACE ID\tROOT SPAN\tAPP\tSTART\tSPANS")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", t.TraceID, t.Root, t.Service, t.Start.Local().Format("15:04:05.000"), t.Spans)
	}
	return tw.Flush()
}

// demoApps are the apps a create's trace passes through.
var demoApps = []string{devstack.AppTask, devstack.AppNotification, devstack.AppAudit}

// traceWait bounds the demo's wait for the create's spans.
const traceWait = 10 * time.Second

// tracePoll is how often the demo asks the receiver meanwhile.
const tracePoll = 200 * time.Millisecond

// waitForTrace polls the receiver at base for trace id until it holds
// spans of every app in apps and the parent of every span (an app exports
// in batches: a child can come before its parent), or wait has passed; it
// returns what arrived and the apps still missing.
func waitForTrace(ctx context.Context, hc *http.Client, base, id string, apps []string, wait time.Duration) (otlpsink.TraceResponse, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var t otlpsink.TraceResponse
	for {
		got, err := otlpsink.FetchTrace(ctx, hc, base, id)
		switch {
		case err == nil:
			t = got
		case !errors.Is(err, otlpsink.ErrNoTrace) && ctx.Err() == nil:
			return t, nil, err
		}
		arrived := tracetree.Apps(t.Spans)
		var missing []string
		for _, app := range apps {
			if !slices.Contains(arrived, app) {
				missing = append(missing, app)
			}
		}
		if len(missing) == 0 && !hasOrphans(t.Spans) {
			return t, nil, nil
		}
		select {
		case <-ctx.Done():
			return t, missing, nil
		case <-time.After(tracePoll):
		}
	}
}

// hasOrphans reports whether a span's parent is not among spans.
func hasOrphans(spans []otlpsink.Span) bool {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	return slices.ContainsFunc(spans, func(s otlpsink.Span) bool { return s.ParentSpanID != "" && !ids[s.ParentSpanID] })
}
