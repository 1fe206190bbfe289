package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// run runs the loads, prints the table, then measures the cold start.
func (b *bench) run(ctx context.Context, out io.Writer) error {
	verify, err := rsaVerifyCPU()
	if err != nil {
		return err
	}
	var rows []row
	for _, l := range []struct {
		name string
		fn   func(context.Context, int) error
	}{{"create", b.create}, {"list", b.list}} {
		for _, conc := range Concurrencies {
			r, err := b.measure(ctx, l.name, conc, l.fn)
			if err != nil {
				return err
			}
			if r.errs > 0 {
				return fmt.Errorf("%s at concurrency %d: %d of %d requests failed; the first: %v", l.name, conc, r.errs, r.n, r.firstErr)
			}
			rows = append(rows, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if err := printTable(out, rows, verify); err != nil {
		return err
	}
	if b.o.traces {
		spans := b.stack.Traces().Counts().Spans
		if _, err := fmt.Fprintf(out, "telemetry: on (-traces): the apps exported %d spans to devstack's trace receiver\n", spans); err != nil {
			return err
		}
	}
	for _, app := range b.o.profiles {
		if err := b.saveProfile(out, app); err != nil {
			return err
		}
	}
	c, err := b.coldStart(ctx)
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	return c.print(out)
}

// saveProfile has the profiled app write its profile (SIGUSR1: the host
// stops a handler by killing it, too late to write anything), waits for the
// file and copies it out of the state directory. The app runs on.
func (b *bench) saveProfile(out io.Writer, app string) error {
	pid := b.stack.PID(app)
	if pid == 0 {
		return fmt.Errorf("the %s app is not running: no profile", app)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return err
	}
	var data []byte
	var err error
	for deadline := time.Now().Add(profileWait); ; time.Sleep(20 * time.Millisecond) {
		if data, err = os.ReadFile(b.profiles[app]); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("the %s app wrote no profile within %v: %w", app, profileWait, err)
	}
	dst := filepath.Join(b.o.profileDir, app+".cpu.pprof")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "CPU profile of %s (the whole run until now, %s bytes): go tool pprof -top %s\n",
		app, strconv.Itoa(len(data)), dst)
	return err
}

// profileWait bounds the wait for a profiled app to write its profile.
const profileWait = 30 * time.Second
