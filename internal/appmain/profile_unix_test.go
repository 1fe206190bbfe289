//go:build unix

package appmain

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCPUProfileOnSIGUSR1: SIGUSR1 writes the profile out while the
// process runs on (the host stops handlers by killing them), under the file's
// name only once complete; the stop that follows does nothing more.
func TestCPUProfileOnSIGUSR1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(EnvCPUProfile, path)
	stop, err := startCPUProfile(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the profile is under its name before it is complete: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// Polling with a generous bound: the write happens on another goroutine.
	var b []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, err = os.ReadFile(path); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("no profile after SIGUSR1: %v", err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("the profile is not gzipped protobuf: % x", b[:min(len(b), 8)])
	}
	if _, err := os.Stat(path + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the partial file is left: %v", err)
	}
	stop()
	if b2, err := os.ReadFile(path); err != nil || !bytes.Equal(b, b2) {
		t.Errorf("the stop after SIGUSR1 changed the profile (err %v)", err)
	}
}
