package infra

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/appmain"
)

// TestNoCPUProfileSetting: the benchmark's CPU profile setting is never
// deployed. A profile costs CPU on every request and its file grows on the
// instance's disk; it is for `make bench-load PROFILE=<app>` only. Every
// file of infra/ (the Bicep, its parameters and the hooks) and azure.yaml
// is checked, so no module or parameter file can set it either.
func TestNoCPUProfileSetting(t *testing.T) {
	files := []string{filepath.Join("..", "azure.yaml")}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bicep := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), appmain.EnvCPUProfile) {
			t.Errorf("%s names %s: the CPU profile must never be on in a deployment", f, appmain.EnvCPUProfile)
		}
		if strings.HasSuffix(f, ".bicep") {
			bicep++
		}
	}
	if bicep < 2 { // main.bicep and functionapp.bicep at least: the walk found the Bicep
		t.Fatalf("found %d Bicep files under infra/", bicep)
	}
}
