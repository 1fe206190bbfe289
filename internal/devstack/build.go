package devstack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// App names: each is a folder functions/<name> and a binary of that name.
const (
	AppTask         = "task"
	AppNotification = "notification"
	AppAudit        = "audit"
)

// Apps lists the Function Apps, in start order.
func Apps() []string { return []string{AppTask, AppNotification, AppAudit} }

// Build compiles the three handlers (root/functions/<app>) into
// binDir/<app> with the go command on PATH, for this platform.
func Build(ctx context.Context, root, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("devstack: build: %w", err)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return fmt.Errorf("devstack: build: %w", err)
	}
	// One go build with -o a directory writes each main package as
	// <dir>/<last path element>, sharing the work of compiling their
	// common dependencies.
	args := []string{"build", "-o", abs + string(filepath.Separator)}
	for _, app := range Apps() {
		args = append(args, "./functions/"+app)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devstack: go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// binary is the path of an app's handler in binDir.
func binary(binDir, app string) string {
	if runtime.GOOS == "windows" {
		app += ".exe"
	}
	return filepath.Join(binDir, app)
}
