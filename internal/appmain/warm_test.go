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
