// Command entra-emulator serves the local Entra ID emulator over HTTPS.
//
//	entra-emulator -addr 127.0.0.1:7070 -state-dir DIR [-config FILE]
//	entra-emulator token --user bob --resource API [--expired ...]
//	entra-emulator trust --state-dir DIR
//
// It prints "ready <base URL>" on stdout once it serves, writes its CA to
// DIR/ca.pem, and logs JSON to stderr. -print-config writes the effective
// directory (tenants, users, apps with ids and secrets) as JSON and exits;
// -print-schema writes the JSON Schema of that format.
// The token subcommand asks the running emulator (its loopback-only admin
// API) for an access token without a flow, right or wrong on purpose. The
// trust subcommand prints the commands that trust the emulator's CA.
// For development and tests only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/loopback"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "entra-emulator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return runToken(ctx, args[1:], stdout, stderr)
		case "trust":
			return runTrust(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("entra-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: entra-emulator [flags]            serve the emulator")
		fmt.Fprintln(stderr, "       entra-emulator token [flags]      a token from the running emulator (token -h)")
		fmt.Fprintln(stderr, "       entra-emulator trust [flags]      commands that trust its CA (trust -h)")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:7070", "listen address (loopback unless -allow-non-loopback)")
	baseURL := fs.String("base-url", "", "canonical base URL, the issuer's root (default https://<addr>)")
	stateDir := fs.String("state-dir", "", "directory that keeps the CA (ca.pem) and signing keys across restarts (default: in memory)")
	configFile := fs.String("config", "", "JSON directory file (default: the built-in directory)")
	printConfig := fs.Bool("print-config", false, "print the effective directory as JSON and exit")
	printSchema := fs.Bool("print-schema", false, "print the JSON Schema of the -config file and exit")
	allowNonLoopback := fs.Bool("allow-non-loopback", false, "allow listening on a non-loopback address (the emulator's secrets are public: never expose it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	if *printSchema {
		_, err := stdout.Write(entra.DirectorySchema)
		return err
	}
	dir, err := loadDirectory(*configFile)
	if err != nil {
		return err
	}
	if *printConfig {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(dir)
	}
	if err := checkLoopback(*addr, *allowNonLoopback); err != nil {
		return err
	}
	if *stateDir != "" {
		if err := os.MkdirAll(*stateDir, 0o700); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *baseURL == "" {
		// A wildcard address is no URL a client can use: name loopback instead.
		port := l.Addr().(*net.TCPAddr).Port
		*baseURL = "https://" + l.Addr().String()
		if ip := l.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			*baseURL = fmt.Sprintf("https://127.0.0.1:%d", port)
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	srv, err := entra.New(entra.Config{BaseURL: *baseURL, Directory: dir, StateDir: *stateDir, Logger: log})
	if err != nil {
		l.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(stdout, "ready", srv.BaseURL())
	return srv.ServeTLS(ctx, l)
}

// loadDirectory reads the -config file, or gives the built-in directory.
func loadDirectory(file string) (*entra.Directory, error) {
	if file == "" {
		return entra.DefaultDirectory(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return entra.LoadDirectory(f)
}

// checkLoopback refuses addresses other machines could reach, unless allowed.
func checkLoopback(addr string, allow bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if allow || loopback.Host(host) {
		return nil
	}
	return errors.New("-addr " + addr + " is not a loopback address; the emulator's keys and secrets are public, so pass -allow-non-loopback only if you understand who can reach it")
}
