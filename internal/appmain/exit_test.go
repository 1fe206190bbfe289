//go:build unix

package appmain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envMainMode makes the test binary run Main (see TestMain).
const envMainMode = "APPMAIN_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMainMode) != "" {
		Main("probe", func(ctx context.Context, log *slog.Logger) (http.Handler, io.Closer, error) {
			log.Info("built")
			return http.NotFoundHandler(), nil, nil
		})
		return
	}
	os.Exit(m.Run())
}

// runMain runs Main in a child process with env.
func runMain(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	// GOCOVERDIR: under go test -cover the child (this binary) would
	// otherwise warn on stderr that it has nowhere to write coverage.
	cmd.Env = append([]string{envMainMode + "=1", "PATH=" + os.Getenv("PATH"), "GOCOVERDIR=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

// TestMainFatalErrorExitsNonZero: a configuration error is exit 1 (the
// host restarts the worker; exit 0 would leave the app down) with one
// Error record on stderr and nothing on stdout.
func TestMainFatalErrorExitsNonZero(t *testing.T) {
	cmd, stdout, stderr := runMain(t, "FUNCTIONS_CUSTOMHANDLER_PORT=nope")
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var rec map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil || rec["level"] != "ERROR" ||
		!strings.Contains(rec["error"].(string), "is not a port") {
		t.Errorf("stderr: %q, want one Error record naming the bad setting", stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout)
	}
}

// TestMainExitsZeroOnSignalOnly: serving, it exits 0 after SIGTERM, its
// Info records on stdout.
func TestMainExitsZeroOnSignalOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd, stdout, stderr := runMain(t, "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; stderr %s", err, stderr)
	}
	if !strings.Contains(stdout.String(), `"msg":"built"`) || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
}
