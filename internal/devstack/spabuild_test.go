//go:build unix

package devstack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/devstack"
)

// fakeWeb is a web/ folder with the files the SPA's build reads.
func fakeWeb(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html": "<html></html>", "package.json": "{}", "package-lock.json": `{"v":1}`,
		"tsconfig.json": "{}", "vite.config.ts": "export default {}", "src/main.ts": "console.log(1)",
	} {
		write(t, filepath.Join(dir, name), body)
	}
	return dir
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hash(t *testing.T, dir string) string {
	t.Helper()
	h, err := devstack.SPASourceHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSPASourceHashFollowsTheSourcesOnly(t *testing.T) {
	dir := fakeWeb(t)
	base := hash(t, dir)
	// What the build writes, and what npm installs, is not a source.
	write(t, filepath.Join(dir, "dist", "index.html"), "built")
	write(t, filepath.Join(dir, "node_modules", "x", "index.js"), "dep")
	write(t, filepath.Join(dir, "screenshots", "a.png"), "png")
	if got := hash(t, dir); got != base {
		t.Fatal("the hash changed with dist/, node_modules/ or screenshots/")
	}
	for _, change := range []string{"src/main.ts", "src/new/deep.ts", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json", "public/logo.svg"} {
		before := hash(t, dir)
		write(t, filepath.Join(dir, change), "changed "+change)
		if hash(t, dir) == before {
			t.Errorf("changing %s left the hash as it was", change)
		}
	}
	before := hash(t, dir)
	t.Setenv("VITE_TASK_API", "http://127.0.0.1:1")
	if hash(t, dir) == before {
		t.Error("a VITE_ variable (baked into the build) left the hash as it was")
	}
}

// fakeNPM puts an npm on PATH that logs its arguments to log and, for
// `run build`, writes dist/index.html as vite would (emptying dist first).
func fakeNPM(t *testing.T) (log string) {
	t.Helper()
	bin := t.TempDir()
	log = filepath.Join(bin, "npm.log")
	write(t, filepath.Join(bin, "npm"), `#!/bin/sh
echo "$*" >>`+log+`
case "$*" in
"ci"*) rm -rf node_modules && mkdir node_modules ;;
"run build") rm -rf dist && mkdir dist && echo built >dist/index.html ;;
esac
`)
	if err := os.Chmod(filepath.Join(bin, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func TestBuildSPARebuildsOnlyWhatChanged(t *testing.T) {
	dir := fakeWeb(t)
	log := fakeNPM(t)
	build := func() bool {
		t.Helper()
		built, err := devstack.BuildSPA(context.Background(), dir, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		return built
	}
	calls := func() string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.TrimSpace(string(b))
	}

	if !build() || calls() != "ci --no-audit --no-fund\nrun build" {
		t.Fatal("a first build should install and build")
	}
	if build() || calls() != "" {
		t.Fatal("nothing changed: no npm at all")
	}
	write(t, filepath.Join(dir, "src", "main.ts"), "console.log(2)")
	if !build() || calls() != "run build" {
		t.Fatal("a source changed: build without npm ci")
	}
	write(t, filepath.Join(dir, "package-lock.json"), `{"v":2}`)
	if !build() || calls() != "ci --no-audit --no-fund\nrun build" {
		t.Fatal("package-lock.json changed: npm ci, then build")
	}
	os.RemoveAll(filepath.Join(dir, "dist"))
	if !build() || calls() != "run build" {
		t.Fatal("dist/ deleted: build again")
	}
}

func TestBuildSPAFailureCarriesNPMsOutput(t *testing.T) {
	dir := fakeWeb(t)
	bin := t.TempDir()
	write(t, filepath.Join(bin, "npm"), "#!/bin/sh\necho 'vite: src/main.ts: syntax error' >&2\nexit 1\n")
	if err := os.Chmod(filepath.Join(bin, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	_, err := devstack.BuildSPA(context.Background(), dir, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("BuildSPA = %v, want npm's output in the error", err)
	}
	if needed, _, _ := devstack.SPABuildNeeded(dir); !needed {
		t.Error("a failed build left a stamp")
	}
}
