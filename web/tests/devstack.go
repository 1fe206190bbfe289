//go:build ignore

// A devstack for the browser tests (make browser-test): the whole system
// on its own ports (1707x, so it runs beside `make run`), its own state
// directory, and the built SPA at http://localhost:3000 configured for
// those ports. SIGUSR1 stops the Notification Service (its address then
// answers 502); SIGUSR2 stops the Audit Service, or starts it again when it
// is stopped; SIGINT or SIGTERM stops everything. The Task API gives up on
// an audit event after one attempt (AUDIT_MAX_ATTEMPTS=1), so a create
// while the Audit Service is stopped leaves a dead letter to replay. With
// -no-fabrikam-notify-consent the second tenant (Fabrikam) has no admin
// consent for the Task API to call the Notification Service on its users'
// behalf, so their notifications need their own (combined) consent.
//
//	go run web/tests/devstack.go -state DIR -spa web/dist-test [-no-fabrikam-notify-consent]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

func main() {
	state := flag.String("state", "", "state directory (the emulator's CA is STATE/entra/ca.pem)")
	spa := flag.String("spa", "web/dist-test", "the built SPA")
	noConsent := flag.Bool("no-fabrikam-notify-consent", false,
		"remove the second tenant's admin consent for the Task API to call the Notification Service")
	flag.Parse()
	var dir *entra.Directory
	if *noConsent {
		dir = withoutFabrikamNotifyConsent()
	}
	if err := run(*state, *spa, dir); err != nil {
		fmt.Fprintln(os.Stderr, "browser-test devstack:", err)
		os.Exit(1)
	}
}

// withoutFabrikamNotifyConsent is the default directory less the second
// tenant's consent grant for Task API → Notification Service.
func withoutFabrikamNotifyConsent() *entra.Directory {
	dir := entra.DefaultDirectory()
	for _, t := range dir.Tenants {
		if t.ID != entra.SecondTenantID {
			continue
		}
		t.ConsentGrants = slices.DeleteFunc(slices.Clone(t.ConsentGrants), func(g *entra.ConsentGrant) bool {
			return g.ClientAppID == entra.TaskAPIClientID && g.ResourceAppID == entra.NotificationClientID
		})
	}
	return dir
}

func run(state, spa string, dir *entra.Directory) error {
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
		Root: root, StateDir: state, BinDir: bin, SPADir: spa, EntraDirectory: dir,
		Ports:  devstack.Ports{Entra: 17070, Task: 17071, Notification: 17072, Audit: 17073, KeyVault: 17074},
		AppEnv: map[string]map[string]string{devstack.AppTask: {"AUDIT_MAX_ATTEMPTS": "1"}},
	})
	if err != nil {
		return err
	}
	fmt.Println("ready: SPA", devstack.SPAOrigin, "Task API", s.URL(devstack.AppTask))
	usr1, usr2 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	signal.Notify(usr2, syscall.SIGUSR2)
	auditStopped := false
	for {
		select {
		case <-usr1:
			fmt.Println("stopping the notification app:", s.StopApp(devstack.AppNotification))
		case <-usr2:
			if auditStopped {
				fmt.Println("starting the audit app:", s.StartApp(ctx, devstack.AppAudit))
			} else {
				fmt.Println("stopping the audit app:", s.StopApp(devstack.AppAudit))
			}
			auditStopped = !auditStopped
		case <-ctx.Done():
			return s.Close()
		}
	}
}
