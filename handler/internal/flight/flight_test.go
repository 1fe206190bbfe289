package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestShared: concurrent callers of one key share one call.
func TestShared(t *testing.T) {
	g := &Group[int]{Timeout: time.Minute}
	release := make(chan struct{})
	var calls atomic.Int32
	var started sync.WaitGroup
	started.Add(1)
	go func() {
		// The first call holds until every caller below has joined.
		_, _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
			calls.Add(1)
			started.Done()
			<-release
			return 7, nil
		})
	}()
	started.Wait()
	var wg sync.WaitGroup
	results := make([]int, 10)
	for i := range results {
		wg.Go(func() {
			results[i], _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
				calls.Add(1)
				return -1, nil
			})
		})
	}
	waitFor(t, g, 11) // the ten have joined the first caller's call
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d calls, want 1", calls.Load())
	}
	for _, r := range results {
		if r != 7 {
			t.Fatalf("a caller got %d, want 7", r)
		}
	}
}

// TestCallerHangsUp: a caller whose ctx ends gets ctx.Err() at once; the
// call goes on, under its own timeout, for the others.
func TestCallerHangsUp(t *testing.T) {
	g := &Group[string]{Timeout: time.Minute}
	release := make(chan struct{})
	var callCtxErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := g.Do(ctx, "k", func(cctx context.Context) (string, error) {
			<-release
			callCtxErr.Store(errOrNil(cctx.Err()))
			return "ok", nil
		})
		done <- err
	}()
	waitFor(t, g, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung-up caller: %v", err)
	}
	// A second caller joins the same call and gets its result.
	res := make(chan string)
	go func() {
		v, _ := g.Do(context.Background(), "k", func(context.Context) (string, error) { return "second call", nil })
		res <- v
	}()
	waitFor(t, g, 1)
	close(release)
	if v := <-res; v != "ok" {
		t.Fatalf("second caller got %q, want the shared call's ok", v)
	}
	if e := callCtxErr.Load(); e != errNone {
		t.Fatalf("the call's context ended with its first caller: %v", e)
	}
}

// TestTimeout: Timeout bounds the call's context.
func TestTimeout(t *testing.T) {
	g := &Group[int]{Timeout: time.Nanosecond}
	_, err := g.Do(context.Background(), "k", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
}

// TestBase: calls run under Base, so ending it ends them.
func TestBase(t *testing.T) {
	base, stop := context.WithCancel(context.Background())
	stop()
	g := &Group[int]{Base: base, Timeout: time.Minute}
	_, err := g.Do(context.Background(), "k", func(ctx context.Context) (int, error) { return 0, ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want Canceled from Base", err)
	}
}

// TestPanic: a panic is every caller's error, and the key is free again.
func TestPanic(t *testing.T) {
	g := &Group[int]{Timeout: time.Minute}
	if _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { panic("boom") }); err == nil {
		t.Fatal("a panic returned no error")
	}
	if v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 3, nil }); v != 3 || err != nil {
		t.Fatalf("after a panic: %d %v", v, err)
	}
}

var errNone = errors.New("none")

func errOrNil(err error) error {
	if err == nil {
		return errNone
	}
	return err
}

// waitFor polls, within a generous bound, until n callers wait on g.
func waitFor[T any](t *testing.T, g *Group[T], n int32) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); g.waiting.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers waiting, want %d", g.waiting.Load(), n)
		}
	}
}
