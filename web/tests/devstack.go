//go:build ignore

// A devstack for the browser tests (make browser-test): the whole system
// on its own ports (1707x, so it runs beside `make run`), its own state
// directory, and the built SPA at http://localhost:3000 configured for
// those ports. SIGUSR1 stops the Notification Service (its address then
// answers 502); SIGINT or SIGTERM stops everything.
//
//	go run web/tests/devstack.go -state DIR -spa web/dist-test
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/handoff-dev/handoff/internal/devstack"
)

func main() {
	state := flag.String("state", "", "state directory (the emulator's CA is STATE/entra/ca.pem)")
	spa := flag.String("spa", "web/dist-test", "the built SPA")
	flag.Parse()
	if err := run(*state, *spa); err != nil {
		fmt.Fprintln(os.Stderr, "browser-test devstack:", err)
		os.Exit(1)
	}
}

func run(state, spa string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	bin := filepath.Join(state, "bin")
	if err := devstack.Build(ctx, root, bin); err != nil {
		return err
	}
	s, err := devstack.Start(ctx, devstack.Options{
		Root: root, StateDir: state, BinDir: bin, SPADir: spa,
		Ports: devstack.Ports{Entra: 17070, Task: 17071, Notification: 17072, Audit: 17073, KeyVault: 17074},
	})
	if err != nil {
		return err
	}
	fmt.Println("ready: SPA", devstack.SPAOrigin, "Task API", s.URL(devstack.AppTask))
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	for {
		select {
		case <-usr1:
			fmt.Println("stopping the notification app:", s.StopApp(devstack.AppNotification))
		case <-ctx.Done():
			return s.Close()
		}
	}
}
