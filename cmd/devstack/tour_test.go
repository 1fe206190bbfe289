//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

const (
	tourBegin = "<!-- tour:begin -->"
	tourEnd   = "<!-- tour:end -->"
)

// readmeTour is the shell block between the README's tour markers.
func readmeTour(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, tourBegin), strings.Index(s, tourEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s … %s section", tourBegin, tourEnd)
	}
	block := strings.TrimSpace(s[i+len(tourBegin) : j])
	if !strings.HasPrefix(block, "```sh\n") || !strings.HasSuffix(block, "\n```") {
		t.Fatalf("the README's tour is not one ```sh block:\n%s", block)
	}
	return strings.TrimSuffix(strings.TrimPrefix(block, "```sh\n"), "```")
}

func TestREADMETourIsWhatMakeRunPrints(t *testing.T) {
	if got, want := readmeTour(t), tour(defaultTourURLs); got != want {
		t.Errorf("the README's tour differs from the banner's (cmd/devstack/tour.go) for make run's ports:\n--- README\n%s\n--- banner\n%s", got, want)
	}
}

// tourCommand is one shell command of the tour (continuation lines
// joined), with the status its comment promises ("→ NNN"), if any.
type tourCommand struct {
	text   string
	status int
}

var statusMark = regexp.MustCompile(`→ (\d{3})\b`)

// parseTour splits the tour into commands; each "→ NNN" of a comment is
// the status of the next curl command.
func parseTour(t *testing.T, script string) []tourCommand {
	t.Helper()
	var cmds []tourCommand
	pending, cont := 0, ""
	for _, line := range strings.Split(script, "\n") {
		if cont == "" && strings.HasPrefix(line, "#") {
			if m := statusMark.FindStringSubmatch(line); m != nil {
				pending, _ = strconv.Atoi(m[1])
			}
			continue
		}
		if cont == "" && strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += line + "\n"
			continue
		}
		c := tourCommand{text: cont + line}
		cont = ""
		if strings.Contains(c.text, "curl ") {
			if pending == 0 {
				t.Errorf("no comment says what status this answers (→ NNN):\n%s", c.text)
			}
			c.status, pending = pending, 0
		}
		cmds = append(cmds, c)
	}
	if cont != "" || pending != 0 {
		t.Errorf("the tour ends in a continuation or with a status no curl line answers")
	}
	return cmds
}

var curlURL = regexp.MustCompile(`https?://127\.0\.0\.1:\d+(/\S*)`)

// route is a curl command's method and route template ($ID → {id}).
func route(cmd string) string {
	m := curlURL.FindStringSubmatch(cmd)
	if m == nil {
		return ""
	}
	method := "GET"
	if i := strings.Index(cmd, "-X "); i >= 0 {
		method = strings.Fields(cmd[i+3:])[0]
	} else if strings.Contains(cmd, " -d ") {
		method = "POST"
	}
	return method + " " + strings.ReplaceAll(m[1], "$ID", "{id}")
}

func TestTourCoversEveryRoute(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range parseTour(t, readmeTour(t)) {
		covered[route(c.text)] = true
	}
	// The Task API's own calls, made on each create: no person makes them.
	serviceOnly := []string{"POST /api/notify", "POST /api/audit"}
	for _, r := range slices.Concat(taskapi.Routes(), notifyapi.Routes(), auditapi.Routes()) {
		name := r.Method + " " + r.Pattern
		if !covered[name] && !slices.Contains(serviceOnly, name) {
			t.Errorf("the tour has no curl line for %s", name)
		}
	}
}

// TestREADMETourRuns runs the README's tour, line by line in one bash as
// pasted beside `make run`, against a live devstack: each command must
// exit 0 and each curl line answer the status its comment says. The stack
// listens on free ports, so make run's are rewritten to them; nothing else
// of a line changes.
func TestREADMETourRuns(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, tool := range []string{"curl", "sed", "grep", "cut", "tr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the tour needs %s", tool)
		}
	}
	p := startDevstack(t)
	script := strings.NewReplacer(
		defaultTourURLs.Entra, p.info.Entra, defaultTourURLs.Task, p.info.Task,
		defaultTourURLs.Notification, p.info.Notification, defaultTourURLs.Audit, p.info.Audit,
	).Replace(readmeTour(t))
	cmds := parseTour(t, script)

	outDir := t.TempDir()
	var sh strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&sh, "{ %s\n} >%q 2>&1\necho $? >%q\n", c.text,
			filepath.Join(outDir, fmt.Sprint(i, ".out")), filepath.Join(outDir, fmt.Sprint(i, ".rc")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", sh.String())
	run.Dir = testRoot // bin/devstack, .state and a go.mod: a repository root
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for i, c := range cmds {
		rc, _ := os.ReadFile(filepath.Join(outDir, fmt.Sprint(i, ".rc")))
		out, _ := os.ReadFile(filepath.Join(outDir, fmt.Sprint(i, ".out")))
		if strings.TrimSpace(string(rc)) != "0" {
			t.Errorf("exit %s:\n%s\n--- output\n%s", strings.TrimSpace(string(rc)), c.text, out)
			continue
		}
		if c.status == 0 {
			continue
		}
		answered := regexp.MustCompile(fmt.Sprintf(`(?m)^(HTTP/[\d.]+ %d |%d\r?$)`, c.status, c.status))
		if !answered.Match(out) {
			t.Errorf("not %d:\n%s\n--- output\n%s", c.status, c.text, out)
		}
	}
}
