package appmain

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for the warm-up's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWarm: Warm returns before the warm-up ends (readiness is not
// delayed); a failure is logged, not fatal; the warm-up gets a deadline
// of WarmTimeout.
func TestWarm(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	release := make(chan struct{})
	var deadline time.Time
	done := Warm(context.Background(), log, func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		<-release // Warm has returned while this runs
		return errors.New("authority unreachable")
	})
	select {
	case <-done:
		t.Fatal("the warm-up ended before it was released")
	default:
	}
	close(release)
	<-done
	if !strings.Contains(buf.String(), "warm-up failed") || !strings.Contains(buf.String(), "authority unreachable") {
		t.Errorf("log = %q, want the failure", buf.String())
	}
	if deadline.IsZero() || time.Until(deadline) > WarmTimeout {
		t.Errorf("the warm-up's deadline is %v, want one within WarmTimeout (%v)", deadline, WarmTimeout)
	}

	done = Warm(context.Background(), log, func(context.Context) error { return nil })
	<-done
	if !strings.Contains(buf.String(), "warm-up done") {
		t.Errorf("log = %q, want the success", buf.String())
	}
}

// TestWarmOff: WARM_UP=off skips the warm-up; a value other than on or off
// is refused.
func TestWarmOff(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	t.Setenv(EnvWarmUp, "off")
	ran := false
	<-Warm(context.Background(), log, func(context.Context) error { ran = true; return nil })
	if ran {
		t.Error("the warm-up ran with WARM_UP=off")
	}
	for v, want := range map[string]bool{"": true, "on": true, "off": false} {
		t.Setenv(EnvWarmUp, v)
		if on, err := warmUpOn(); err != nil || on != want {
			t.Errorf("WARM_UP=%q: %v, %v; want %v", v, on, err, want)
		}
	}
	for _, v := range []string{"0", "false", "OFF", " off"} {
		t.Setenv(EnvWarmUp, v)
		if _, err := warmUpOn(); err == nil {
			t.Errorf("WARM_UP=%q was accepted", v)
		}
	}
}
