package main

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuilder is a strings.Builder safe for concurrent use.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestWithProgressSpeaksUntilTheStepEnds(t *testing.T) {
	var out lockedBuilder
	failed := errors.New("the build failed")
	err := withProgress(&out, time.Millisecond, "building the handlers (the first build downloads modules)", func() error {
		// Done once two progress lines were said; bounded generously.
		for deadline := time.Now().Add(time.Minute); strings.Count(out.String(), "still") < 2; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no progress lines while the step ran")
			}
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("withProgress = %v, want the step's error", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "devstack: building the handlers (the first build downloads modules)" {
		t.Errorf("first line %q, want what the step does", lines[0])
	}
	if !strings.HasPrefix(lines[1], "devstack: still building the handlers (") {
		t.Errorf("progress line %q, want \"devstack: still building the handlers (<time>)\"", lines[1])
	}
	// Nothing more once the step returned.
	n := len(out.String())
	time.Sleep(20 * time.Millisecond)
	if len(out.String()) != n {
		t.Error("progress lines after the step ended")
	}
}
