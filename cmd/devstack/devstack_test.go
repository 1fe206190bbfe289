//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests below run devstack as `make run` does, as a process of its own
// (bin/devstack run), on free loopback ports and without the SPA, so they
// run beside a `make run` of the developer's.

// stopBound is how long a stopped devstack may take to be gone with its
// handlers and ports: the acceptance bound for `kill -TERM`.
const stopBound = 15 * time.Second

// startBound bounds a devstack's start, the handlers' build included (a
// cold build compiles every module).
const startBound = 5 * time.Minute

// testRoot is a stand-in for a repository root that a shell beside
// `make run` sees: bin/devstack, .state (the stack's state directory) and a
// go.mod naming the module, so `bin/devstack token` finds .state there.
// One for the package's tests: the handlers are built into it once.
var testRoot string

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "handoff-devstack-cmd")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+module+"\n"), 0o644); err != nil {
		return 0, err
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "devstack"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build: %v\n%s", err, out)
	}
	testRoot = dir
	return m.Run(), nil
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// devstackProcess is a running bin/devstack and what it wrote about itself.
type devstackProcess struct {
	cmd  *exec.Cmd
	info runInfo
	log  *bytes.Buffer
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait's, once done is closed
}

// startDevstack runs bin/devstack run from the repository root with its
// state in testRoot/.state, and waits until it has described itself.
func startDevstack(t *testing.T) *devstackProcess {
	t.Helper()
	state := filepath.Join(testRoot, ".state")
	os.Remove(filepath.Join(state, runInfoFile)) // a SIGKILLed one's
	p := &devstackProcess{log: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(testRoot, "bin", "devstack"), "run", "-state", state, "-free-ports", "-no-spa")
	p.cmd.Dir = repoRoot(t)
	out := &syncBuffer{b: p.log}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("devstack's output:\n%s", p.cmd.Stdout.(*syncBuffer).String())
		}
	})
	deadline := time.Now().Add(startBound)
	for {
		info, err := readRunInfo(state)
		if err == nil && info.PID == p.cmd.Process.Pid {
			p.info = info
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("devstack exited before it was ready (%v)", p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("devstack did not describe itself within %s", startBound)
		}
	}
}

// addrs are the addresses devstack listens on.
func (p *devstackProcess) addrs(t *testing.T) []string {
	var out []string
	for _, u := range []string{p.info.Entra, p.info.KeyVault, p.info.Task, p.info.Notification, p.info.Audit} {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parsed.Host)
	}
	return out
}

// waitGone waits (at most stopBound) until no process has one of pids and
// nothing listens on addrs.
func waitGone(t *testing.T, pids map[string]int, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(stopBound)
	for {
		var left []string
		for app, pid := range pids {
			if alive(pid) {
				left = append(left, fmt.Sprintf("the %s handler (pid %d)", app, pid))
			}
		}
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				left = append(left, a+" still answers")
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after devstack stopped: %s", stopBound, strings.Join(left, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether pid is a process that has not exited (a zombie
// waiting for its reaper has).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err) || runtime.GOOS != "linux"
	}
	// pid (comm) S ...: the state follows the last ')'.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

func TestSIGTERMStopsEverythingAndExitsZero(t *testing.T) {
	p := startDevstack(t)
	if len(p.info.Handlers) != 3 {
		t.Fatalf("devstack.json names handlers %v, want 3", p.info.Handlers)
	}
	for app, pid := range p.info.Handlers {
		if pid == 0 || !alive(pid) {
			t.Fatalf("the %s handler (pid %d) is not running", app, pid)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(stopBound):
		t.Fatalf("devstack did not exit within %s of SIGTERM", stopBound)
	}
	if p.err != nil {
		t.Fatalf("devstack exited with %v after SIGTERM, want exit status 0", p.err)
	}
	waitGone(t, p.info.Handlers, p.addrs(t))
	if _, err := os.Stat(filepath.Join(testRoot, ".state", runInfoFile)); !os.IsNotExist(err) {
		t.Errorf("a stopped devstack left its %s (%v)", runInfoFile, err)
	}
	out := p.cmd.Stdout.(*syncBuffer).String()
	if !strings.Contains(out, "devstack: stopped") {
		t.Errorf("no \"devstack: stopped\" in its output")
	}
	if strings.Contains(out, "devstack: devstack:") {
		t.Errorf("a message carries the prefix twice:\n%s", out)
	}
}

func TestHandlersDieWhenDevstackIsKilled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's: elsewhere a SIGKILLed devstack leaves its handlers running (a documented limit)")
	}
	p := startDevstack(t)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	waitGone(t, p.info.Handlers, p.addrs(t))
}

// lockFixedPorts holds /tmp/handoff-ports.lock, which every run on the
// fixed ports takes (make run, make browser-test), until the test ends.
func lockFixedPorts(t *testing.T) {
	t.Helper()
	lock, err := os.OpenFile("/tmp/handoff-ports.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) })
}

func TestSecondRunFailsAtOnceInOneLine(t *testing.T) {
	// make run's Entra port held, as a running devstack holds it (or held
	// by one already): under the lock every fixed-port run here takes.
	lockFixedPorts(t)
	if l, err := net.Listen("tcp", "127.0.0.1:7070"); err == nil {
		defer l.Close()
	}

	state := t.TempDir()
	cmd := exec.Command(filepath.Join(testRoot, "bin", "devstack"), "run", "-state", state, "-no-spa")
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("devstack run did not exit with its port taken")
	}
	var exit *exec.ExitError
	if !errors.As(runErr, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("devstack run = %v, want exit status 1", runErr)
	}
	want := "devstack: 127.0.0.1:7070 (the Entra ID emulator) is in use: is another devstack (make run) running?"
	if got := strings.TrimSuffix(stderr.String(), "\n"); !strings.HasPrefix(got, want) || strings.Contains(got, "\n") {
		t.Fatalf("stderr = %q, want one line starting %q", stderr.String(), want)
	}
	if _, err := os.Stat(filepath.Join(state, "bin")); !os.IsNotExist(err) {
		t.Errorf("devstack built handlers before it checked its ports (%v)", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
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

func TestSIGTERMWhileStartingExitsZero(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds leftover processes in /proc")
	}
	state := t.TempDir() // nothing built yet: the start builds first
	cmd := exec.Command(filepath.Join(testRoot, "bin", "devstack"), "run", "-state", state, "-free-ports", "-no-spa")
	cmd.Dir = repoRoot(t)
	out := &syncBuffer{b: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	for deadline := time.Now().Add(startBound); !strings.Contains(out.String(), "devstack: building the handlers"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("devstack did not start building:\n%s", out.String())
		}
	}
	// Wherever the start is now (building, starting, or running), SIGTERM
	// is a clean stop.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack exited with %v after SIGTERM during its start, want exit status 0:\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("devstack did not exit within a minute of SIGTERM during its start:\n%s", out.String())
	}
	for deadline := time.Now().Add(stopBound); ; time.Sleep(100 * time.Millisecond) {
		left := processesUnder(t, state)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after devstack stopped, these still run: %v", stopBound, left)
		}
	}
}

// processesUnder lists the live processes whose command line names dir.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) && alive(pid) {
			left = append(left, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}
