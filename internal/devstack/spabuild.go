package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The stamps BuildSPA keeps: the hash of the SPA's sources a web/dist was
// built from, and the hash of the package-lock.json web/node_modules was
// installed from. Each lives inside the folder it describes, so deleting
// the folder forgets it.
const (
	spaBuildStamp   = ".devstack-build"
	spaInstallStamp = ".devstack-lock"
)

// SPASourceHash is a hash of what the SPA's build reads in webDir: index.html,
// package.json, package-lock.json, tsconfig*.json, vite.config.*, every file
// under src/ and public/, and the VITE_* variables of this process's
// environment (Vite bakes them in). node_modules and dist are not read.
func SPASourceHash(webDir string) (string, error) {
	var files []string
	top, err := os.ReadDir(webDir)
	if err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	for _, e := range top {
		n := e.Name()
		if !e.IsDir() && (n == "index.html" || n == "package.json" || n == "package-lock.json" ||
			strings.HasPrefix(n, "tsconfig") || strings.HasPrefix(n, "vite.config.")) {
			files = append(files, n)
		}
	}
	for _, dir := range []string{"src", "public"} {
		err := filepath.WalkDir(filepath.Join(webDir, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(webDir, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil && !os.IsNotExist(err) {
			return "", fmt.Errorf("devstack: %w", err)
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(webDir, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("devstack: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	env := os.Environ()
	slices.Sort(env)
	for _, kv := range env {
		if strings.HasPrefix(kv, "VITE_") {
			fmt.Fprintf(h, "env\x00%s\x00", kv)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SPABuildNeeded reports whether webDir/dist is missing or was built from
// other sources than webDir holds now, and the current sources' hash.
func SPABuildNeeded(webDir string) (bool, string, error) {
	sum, err := SPASourceHash(webDir)
	if err != nil {
		return false, "", err
	}
	stamp, err := os.ReadFile(filepath.Join(webDir, "dist", spaBuildStamp))
	return err != nil || strings.TrimSpace(string(stamp)) != sum, sum, nil
}

// BuildSPA builds the SPA in webDir into webDir/dist with npm, unless dist
// was built from the same sources (SPABuildNeeded); it runs `npm ci` first
// only when package-lock.json changed since node_modules was installed.
// progress is told each step. It reports whether it built.
func BuildSPA(ctx context.Context, webDir string, progress func(step string)) (bool, error) {
	needed, sum, err := SPABuildNeeded(webDir)
	if err != nil || !needed {
		return false, err
	}
	lock, err := os.ReadFile(filepath.Join(webDir, "package-lock.json"))
	if err != nil {
		return false, fmt.Errorf("devstack: %w", err)
	}
	lockSum := sha256.Sum256(lock)
	installStamp := filepath.Join(webDir, "node_modules", spaInstallStamp)
	if got, err := os.ReadFile(installStamp); err != nil || strings.TrimSpace(string(got)) != hex.EncodeToString(lockSum[:]) {
		progress("installing the SPA's packages (npm ci)")
		if err := npm(ctx, webDir, "ci", "--no-audit", "--no-fund"); err != nil {
			return false, err
		}
		if err := os.WriteFile(installStamp, []byte(hex.EncodeToString(lockSum[:])+"\n"), 0o644); err != nil {
			return false, fmt.Errorf("devstack: %w", err)
		}
	}
	progress("building the SPA (npm run build)")
	if err := npm(ctx, webDir, "run", "build"); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(webDir, "dist", spaBuildStamp), []byte(sum+"\n"), 0o644); err != nil {
		return false, fmt.Errorf("devstack: %w", err)
	}
	return true, nil
}

// npm runs npm in dir; on failure the error carries its output.
func npm(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devstack: npm %s in %s: %w\n%s", strings.Join(args, " "), dir, err, strings.TrimSpace(out.String()))
	}
	return nil
}
