package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoInstallOutsideModule builds the command the way
// `go install github.com/handoff-dev/handoff/cmd/entra-emulator@latest`
// would: from a module of its own that requires this repository (through a
// replace, so this checkout is what is built) and resolves every other
// dependency afresh (-mod=mod), so a replace directive or a missing
// requirement in the repository's go.mod would fail it. It may fetch modules
// from the Go module proxy when the cache lacks them.
func TestGoInstallOutsideModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command in a module of its own")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/tryinstall\n\ngo 1.26.0\n\nrequire github.com/handoff-dev/handoff v0.0.0\n\nreplace github.com/handoff-dev/handoff => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "entra-emulator")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/handoff-dev/handoff/cmd/entra-emulator")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build outside the repository's module: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-print-schema").Output()
	if err != nil || !strings.Contains(string(out), `"$schema"`) {
		t.Fatalf("the built command: %v\n%s", err, out)
	}
}
