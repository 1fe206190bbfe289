package appmain

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestCPUProfile: unset, nothing is profiled; set, the file is a gzipped
// profile once stopped; an unwritable path fails the start.
func TestCPUProfile(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	t.Setenv(EnvCPUProfile, "")
	stop, err := startCPUProfile(log)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("unset %s wrote %v", EnvCPUProfile, entries)
	}

	path := filepath.Join(dir, "cpu.pprof")
	t.Setenv(EnvCPUProfile, path)
	if stop, err = startCPUProfile(log); err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("the profile is not gzipped protobuf: % x", b[:min(len(b), 8)])
	}

	t.Setenv(EnvCPUProfile, filepath.Join(dir, "missing", "cpu.pprof"))
	if _, err := startCPUProfile(log); err == nil {
		t.Error("a profile file in a missing directory started")
	}
}
