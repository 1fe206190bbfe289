package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// repoRoot is the module root, from cmd/funcpack.
var repoRoot = filepath.Join("..", "..")

// TestPackTask packages the real Task API for Linux and inspects the zip as
// zip deployment would unpack it.
func TestPackTask(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, "functions", "task", "main.go")); err != nil {
		t.Fatalf("functions/task/main.go is missing: the Task API cannot be packaged (%v)", err)
	}
	fns, err := filepath.Glob(filepath.Join(repoRoot, "functions", "task", "*", "function.json"))
	if err != nil || len(fns) == 0 {
		t.Fatalf("no function.json under functions/task: %v", err)
	}
	want := []string{"handler", "host.json"}
	for _, fn := range fns {
		want = append(want, filepath.Base(filepath.Dir(fn))+"/function.json")
	}
	slices.Sort(want)

	out := t.TempDir()
	if err := pack(t.Context(), repoRoot, out, "linux", "amd64", []string{"task"}); err != nil {
		t.Fatal(err)
	}
	entries := checkZip(t, filepath.Join(out, "task.zip"), want)
	checkSame(t, entries["host.json"], filepath.Join(repoRoot, "host.json"))
	for _, fn := range fns {
		checkSame(t, entries[filepath.Base(filepath.Dir(fn))+"/function.json"], fn)
	}
	checkELF(t, entries["handler"])
	checkTree(t, filepath.Join(out, "task"), entries)
}

// TestPackDeterministic packages a tiny app of a throwaway module twice
// (and for arm64): same inputs, same zip bytes.
func TestPackDeterministic(t *testing.T) {
	root := t.TempDir()
	write(t, root, "go.mod", "module example.com/tiny\n\ngo 1.26\n")
	write(t, root, "host.json", `{"version": "2.0"}`+"\n")
	write(t, root, "functions/hello/main.go", "package main\n\nfunc main() { println(\"hello\") }\n")
	write(t, root, "functions/hello/greet/function.json", `{"bindings": []}`+"\n")
	write(t, root, "functions/hello/ping/function.json", `{"bindings": [{"name": "res"}]}`+"\n")
	write(t, root, "functions/hello/local.settings.json.example", "{}\n") // not packaged
	want := []string{"greet/function.json", "handler", "host.json", "ping/function.json"}

	var zips [][]byte
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "dist")
		if i == 1 {
			// A stale file from an earlier package must not survive.
			write(t, out, "hello/stale/function.json", "{}")
		}
		if err := pack(t.Context(), root, out, "linux", "amd64", []string{"hello"}); err != nil {
			t.Fatal(err)
		}
		entries := checkZip(t, filepath.Join(out, "hello.zip"), want)
		checkELF(t, entries["handler"])
		checkTree(t, filepath.Join(out, "hello"), entries)
		z, err := os.ReadFile(filepath.Join(out, "hello.zip"))
		if err != nil {
			t.Fatal(err)
		}
		zips = append(zips, z)
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Error("two packages of the same inputs differ")
	}

	out := t.TempDir()
	if err := pack(t.Context(), root, out, "linux", "arm64", []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	entries := checkZip(t, filepath.Join(out, "hello.zip"), want)
	f, err := elf.NewFile(bytes.NewReader(entries["handler"]))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("-goarch arm64 built for %v", f.Machine)
	}
}

func TestPackErrors(t *testing.T) {
	root := t.TempDir()
	write(t, root, "go.mod", "module example.com/tiny\n\ngo 1.26\n")
	write(t, root, "host.json", `{"version": "2.0"}`)
	write(t, root, "functions/nofn/main.go", "package main\n\nfunc main() {}\n")
	write(t, root, "functions/broken/main.go", "package main\n\nfunc main() { undefined() }\n")
	write(t, root, "functions/broken/f/function.json", "{}")
	for _, tc := range []struct{ name, app string }{
		{"no app named", ""},
		{"path in the name", "../task"},
		{"no such app", "missing"},
		{"no function.json", "nofn"},
		{"does not compile", "broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var apps []string
			if tc.app != "" {
				apps = []string{tc.app}
			}
			out := t.TempDir()
			err := pack(context.Background(), root, out, "linux", "amd64", apps)
			if err == nil {
				t.Fatal("pack succeeded")
			}
			t.Log(err)
			if _, err := os.Stat(filepath.Join(out, tc.app+".zip")); tc.app != "" && err == nil {
				t.Error("a failed package left a zip")
			}
		})
	}
}

// checkZip checks the zip holds exactly want, in that order, with the fixed
// time and Unix modes (0755 for handler, 0644 otherwise); it returns the
// entries' contents by name.
func checkZip(t *testing.T, path string, want []string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	contents := map[string][]byte{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		wantMode := os.FileMode(0o644)
		if f.Name == "handler" {
			wantMode = 0o755
		}
		if f.Mode() != wantMode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), wantMode)
		}
		if creator := f.CreatorVersion >> 8; creator != 3 { // 3: Unix, whose modes unzip keeps
			t.Errorf("%s: made by %d, want 3 (Unix)", f.Name, creator)
		}
		if !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: modified %v, want the fixed 1980-01-01", f.Name, f.Modified)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		contents[f.Name] = b
	}
	if !slices.Equal(names, want) {
		t.Fatalf("zip entries %q, want %q", names, want)
	}
	return contents
}

func checkELF(t *testing.T, b []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("handler is not ELF: %v", err)
	}
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("handler is %v %v %v, want a linux/amd64 executable", f.Class, f.Machine, f.Type)
	}
	if f.Section(".interp") != nil {
		t.Error("handler has an interpreter: it is dynamically linked (CGO_ENABLED=0 was not applied)")
	}
}

// checkTree checks the unpacked tree in dir matches the zip, modes included.
func checkTree(t *testing.T, dir string, entries map[string][]byte) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(dir, path)
		name := filepath.ToSlash(rel)
		want, ok := entries[name]
		if !ok {
			t.Errorf("%s is in the tree but not in the zip", name)
			return nil
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs between the tree and the zip", name)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		wantMode := os.FileMode(0o644)
		if name == "handler" {
			wantMode = 0o755
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v in the tree, want %v", name, fi.Mode().Perm(), wantMode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(entries) {
		t.Errorf("the tree has %d files, the zip %d", n, len(entries))
	}
}

func checkSame(t *testing.T, got []byte, path string) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the packaged copy of %s differs from it", path)
	}
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
