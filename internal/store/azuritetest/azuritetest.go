// Package azuritetest runs Azurite, Azure Storage's emulator, for tests:
// its table service, in memory, on a free loopback port.
//
// The azurite-table program is looked for, in order, at $AZURITE_BIN, at
// <repo root>/.tools/node_modules/.bin/azurite-table (what `make tools`
// installs) and on PATH. Without it, a test is skipped if Node.js is not
// installed either, and fails if it is (run `make tools`), so that CI,
// which installs both, never skips quietly.
package azuritetest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account is Azurite's well-known development account (public).
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startTimeout bounds Azurite's start, until its port answers.
const startTimeout = 30 * time.Second

// Instance is a running Azurite table service.
type Instance struct {
	// Endpoint is the table service's URL: http://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	// ConnectionString is the development account's connection string there.
	ConnectionString string

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// Start starts Azurite for t and returns its connection string; it is
// stopped when t ends.
func Start(t testing.TB) string {
	t.Helper()
	return StartInstance(t).ConnectionString
}

// StartInstance starts Azurite for t; it is stopped when t ends, or by Stop.
func StartInstance(t testing.TB) *Instance {
	t.Helper()
	bin := find(t)
	var lastErr error
	// A free port may be taken between choosing it and Azurite binding
	// it: try a few.
	for range 3 {
		inst, err := start(t, bin)
		if err == nil {
			return inst
		}
		lastErr = err
	}
	t.Fatalf("azuritetest: %v", lastErr)
	return nil
}

// find returns the azurite-table program, or ends the test (see the
// package doc).
func find(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("AZURITE_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("azuritetest: AZURITE_BIN=%s: %v", bin, err)
		}
		return bin
	}
	if root, ok := repoRoot(); ok {
		bin := filepath.Join(root, ".tools", "node_modules", ".bin", "azurite-table")
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	if bin, err := exec.LookPath("azurite-table"); err == nil {
		return bin
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("Azurite tests need Node.js (npm install azurite): node is not installed; install Node.js and npm, then run `make tools`")
	}
	t.Fatal("azuritetest: Node.js is installed but Azurite is not: run `make tools` (installs it into .tools/), or set AZURITE_BIN to azurite-table")
	return ""
}

// repoRoot returns the directory holding go.mod, from the working
// directory (a test's is its package's) upwards.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin on a free port and waits until the port answers.
func start(t testing.TB, bin string) (*Instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir() // its working directory: in memory, Azurite writes nothing, but just in case
	args := []string{
		"--inMemoryPersistence",
		"--tableHost", "127.0.0.1",
		"--tablePort", strconv.Itoa(port),
		"--skipApiVersionCheck",
		"--disableProductStyleUrl",
		"--disableTelemetry",
		"--silent",
	}
	if !strings.Contains(filepath.Base(bin), "table") {
		// The whole of Azurite (AZURITE_BIN=.../azurite): its blob and
		// queue services on free ports too, not on the shared defaults.
		for _, service := range []string{"blob", "queue"} {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			args = append(args, "--"+service+"Host", "127.0.0.1", "--"+service+"Port", strconv.Itoa(p))
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	inst := &Instance{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, Account),
		cmd:      cmd,
		exited:   make(chan struct{}),
	}
	inst.ConnectionString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;TableEndpoint=%s;", Account, Key, inst.Endpoint)
	go func() {
		_ = cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(inst.Stop)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return inst, nil
		}
		select {
		case <-inst.exited:
			return nil, fmt.Errorf("%s exited before its port %d answered: %s", bin, port, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			inst.Stop()
			return nil, fmt.Errorf("%s: port %d did not answer within %v: %s", bin, port, startTimeout, out.String())
		}
	}
}

// Stop stops Azurite (its whole process group) and waits for it to exit.
// Later calls do nothing.
func (i *Instance) Stop() {
	i.stopOnce.Do(func() {
		kill(i.cmd)
		select {
		case <-i.exited:
		case <-time.After(10 * time.Second):
		}
	})
}

// syncBuffer is Azurite's output, kept for error messages (bounded).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 64<<10 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
