// Command funcpack packages Function Apps for zip deployment: for each app
// named on the command line it builds ./functions/<app> into
// <out>/<app>/handler (the executable host.json names), copies host.json and
// the app's function.json files beside it, and writes <out>/<app>.zip with
// the same tree at its root.
//
//	go run ./cmd/funcpack -out dist [-goos linux -goarch amd64] task notification audit
//
// The zip is deterministic: entries sorted by name, one fixed timestamp,
// handler mode 0755 and everything else 0644 (Unix attributes, which Linux
// Function Apps keep when they unpack it).
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// executable is the binary's name in every package, as host.json's
// customHandler.description.defaultExecutablePath says.
const executable = "handler"

// zipTime is every entry's modification time, so that the same inputs make
// the same zip (1980-01-01 is the earliest time a zip can hold).
var zipTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

func main() {
	fs := flag.NewFlagSet("funcpack", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: funcpack [-root .] [-out dist] [-goos linux] [-goarch amd64] app...")
		fs.PrintDefaults()
	}
	root := fs.String("root", ".", "the module root: it holds host.json and functions/<app>/")
	out := fs.String("out", "dist", "output directory: <out>/<app>/ and <out>/<app>.zip")
	goos := fs.String("goos", "linux", "target GOOS (Linux Function Apps: linux)")
	goarch := fs.String("goarch", "amd64", "target GOARCH")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := pack(ctx, *root, *out, *goos, *goarch, fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "funcpack:", err)
		os.Exit(1)
	}
}

// pack builds and packages apps (folders of root/functions) into out, for
// goos/goarch, with CGO disabled. It replaces out/<app>/ and out/<app>.zip.
func pack(ctx context.Context, root, out, goos, goarch string, apps []string) error {
	if len(apps) == 0 {
		return errors.New("no app named")
	}
	for _, app := range apps {
		if !appName.MatchString(app) {
			return fmt.Errorf("%q is not an app name (a folder of functions/)", app)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, app := range apps {
		if err := packApp(ctx, root, out, goos, goarch, app); err != nil {
			return fmt.Errorf("%s: %w", app, err)
		}
	}
	return nil
}

// file is one file of a package: its slash-separated name in the package and
// where it comes from (empty for the built handler).
type file struct {
	name string
	src  string
	mode os.FileMode
}

func packApp(ctx context.Context, root, out, goos, goarch, app string) error {
	files, err := appFiles(root, app)
	if err != nil {
		return err
	}
	dir := filepath.Join(out, app)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := build(ctx, root, filepath.Join(dir, executable), goos, goarch, app); err != nil {
		return err
	}
	for _, f := range files {
		if f.src == "" {
			continue
		}
		if err := copyFile(f.src, filepath.Join(dir, filepath.FromSlash(f.name)), f.mode); err != nil {
			return err
		}
	}
	return writeZip(filepath.Join(out, app+".zip"), dir, files)
}

// appFiles lists an app's package, sorted by name: host.json, the handler
// and each function's function.json.
func appFiles(root, app string) ([]file, error) {
	appDir := filepath.Join(root, "functions", app)
	if fi, err := os.Stat(appDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("no app folder %s", appDir)
	}
	host := filepath.Join(root, "host.json")
	if _, err := os.Stat(host); err != nil {
		return nil, fmt.Errorf("host.json: %w", err)
	}
	fns, err := filepath.Glob(filepath.Join(appDir, "*", "function.json"))
	if err != nil {
		return nil, err
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("no function.json under %s", appDir)
	}
	files := []file{
		{name: "host.json", src: host, mode: 0o644},
		{name: executable, mode: 0o755},
	}
	for _, fn := range fns {
		name := filepath.Base(filepath.Dir(fn))
		if name == executable || name == "host.json" {
			return nil, fmt.Errorf("a function may not be named %q", name)
		}
		files = append(files, file{name: name + "/function.json", src: fn, mode: 0o644})
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	return files, nil
}

// build compiles ./functions/<app> statically for goos/goarch into dst.
func build(ctx context.Context, root, dst, goos, goarch, app string) error {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", abs, "./functions/"+app)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./functions/%s for %s/%s: %w\n%s", app, goos, goarch, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return os.Chmod(abs, 0o755)
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // WriteFile's mode is filtered by the umask
}

// writeZip zips dir's files into path, through a temporary file so that a
// failure leaves no partial zip.
func writeZip(path, dir string, files []file) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".funcpack-*.zip")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(f.mode) // also marks the entry as made on Unix, so the mode is kept
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.name)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
