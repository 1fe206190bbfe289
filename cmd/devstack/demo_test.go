//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// demoBound bounds `devstack demo` against a running stack: the sign-in,
// the create and the wait for its trace (traceWait).
const demoBound = 2 * time.Minute

// TestDemo runs `devstack demo` as `make demo` does, against a devstack
// already running (on free ports: -state names it).
func TestDemo(t *testing.T) {
	p := startDevstack(t)
	if p.info.Traces == "" || p.info.OTLPEndpoint != p.info.Traces {
		t.Fatalf("devstack.json names traces %q, otlp_endpoint %q: want its trace receiver", p.info.Traces, p.info.OTLPEndpoint)
	}
	if banner := p.cmd.Stdout.(*syncBuffer).String(); !regexp.MustCompile(`(?m)^  Traces +` + regexp.QuoteMeta(p.info.Traces) + ` +\(the apps' OTLP; `).MatchString(banner) {
		t.Errorf("the banner names no trace receiver:\n%s", banner)
	}
	cmd := exec.Command(filepath.Join(testRoot, "bin", "devstack"), "demo", "-state", filepath.Join(testRoot, ".state"))
	cmd.Dir = testRoot
	var stdout, stderr syncBuffer
	stdout.b, stderr.b = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(demoBound, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	out := stdout.String()
	if err != nil {
		t.Fatalf("devstack demo: %v\n%s\n%s", err, out, stderr.String())
	}
	t.Logf("devstack demo:\n%s", out)
	if !regexp.MustCompile(`claim +A: user → Task API`).MatchString(out) || !regexp.MustCompile(`POST \S+/api/tasks with token A → 201`).MatchString(out) {
		t.Fatalf("no token table or create:\n%s", out)
	}
	m := regexp.MustCompile(`it sent traceparent 00-([0-9a-f]{32})-([0-9a-f]{16})-01\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo names no traceparent:\n%s", out)
	}
	traceID, demoSpan := m[1], m[2]

	t.Run("SendsItsTraceparent", func(t *testing.T) {
		tr, err := otlpsink.FetchTrace(t.Context(), http.DefaultClient, p.info.Traces, traceID)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tr.Spans, func(s otlpsink.Span) bool { return s.SpanID == demoSpan })
		if i < 0 {
			t.Fatalf("the receiver has no span %s of the demo in %+v", demoSpan, tr.Spans)
		}
		if s := tr.Spans[i]; s.Service != demoService || s.Kind != "client" || s.ParentSpanID != "" || s.Attributes["http.response.status_code"] != "201" {
			t.Errorf("the demo's span = %+v", s)
		}
		if !strings.Contains(out, "trace "+traceID+": ") || !strings.Contains(out, "\n"+demoService+" ") {
			t.Errorf("the demo printed no tree of its trace:\n%s", out)
		}
	})

	// Expected to fail until the apps export spans (issue 17, item 2).
	t.Run("PrintsTraceTree", func(t *testing.T) {
		if strings.Contains(out, "No spans from") || strings.Contains(out, "orphan") {
			t.Fatalf("the tree lacks apps or has orphans:\n%s", out)
		}
		tree := out[strings.Index(out, "trace "+traceID+": "):]
		header := strings.SplitN(tree, "\n", 2)[0]
		for _, app := range demoApps {
			if !strings.Contains(header, app) {
				t.Errorf("the header %q names no %s", header, app)
			}
		}
		// Each line's app and depth: the demo's span at the root, the
		// Task API's under it, the two services' under a Task API span.
		depth := map[string][]int{}
		for _, l := range strings.Split(tree, "\n")[3:] {
			if trimmed := strings.TrimLeft(l, " "); trimmed != "" && !strings.HasPrefix(trimmed, "↪") {
				app := strings.Fields(trimmed)[0]
				depth[app] = append(depth[app], (len(l)-len(trimmed))/2)
			}
		}
		if !slices.Equal(depth[demoService], []int{0}) || len(depth["task"]) == 0 || slices.Min(depth["task"]) != 1 {
			t.Errorf("want the demo's span at the root and the Task API's under it: %v\n%s", depth, tree)
		}
		for _, app := range []string{"notification", "audit"} {
			if len(depth[app]) == 0 || slices.Min(depth[app]) < 2 {
				t.Errorf("want %s's spans under the Task API's: %v\n%s", app, depth, tree)
			}
		}
	})

	t.Run("TraceCommandListsIt", func(t *testing.T) {
		list, err := exec.Command(filepath.Join(testRoot, "bin", "devstack"), "trace", "-state", filepath.Join(testRoot, ".state")).Output()
		if err != nil {
			t.Fatalf("devstack trace: %v", err)
		}
		if !regexp.MustCompile(`(?m)^` + traceID + ` +POST /api/tasks +` + demoService + ` `).Match(list) {
			t.Errorf("devstack trace lists no demo trace:\n%s", list)
		}
	})
}

// The trace receiver's port is checked with the others, before any build.
func TestTraceReceiverPortIsChecked(t *testing.T) {
	// Under the lock every fixed-port run here takes: make run's ports
	// are free but for the receiver's, held here.
	lockFixedPorts(t)
	l, err := net.Listen("tcp", "127.0.0.1:7075")
	if err != nil {
		t.Skipf("7075 is taken by something else: %v", err)
	}
	defer l.Close()
	state := t.TempDir()
	// A run that got past its check would not end: a minute is plenty.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testRoot, "bin", "devstack"), "run", "-state", state, "-no-spa")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("devstack run = %v, want exit status 1:\n%s", err, out)
	}
	want := "devstack: 127.0.0.1:7075 (the trace receiver) is in use: is another devstack (make run) running?"
	if !strings.HasPrefix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("output = %q, want one line starting %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(state, "bin")); !os.IsNotExist(err) {
		t.Errorf("devstack built handlers before it checked its ports (%v)", err)
	}
}
