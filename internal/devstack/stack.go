package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/keyvault"
	"github.com/handoff-dev/handoff/internal/appconfig"
	"github.com/handoff-dev/handoff/internal/funchost"
	"github.com/handoff-dev/handoff/internal/otlpsink"
)

// Ports are the loopback ports of a [Stack]; 0 picks a free port.
type Ports struct {
	Entra, Task, Notification, Audit, KeyVault int
	// Traces is the trace receiver's (see [Telemetry]).
	Traces int
}

// DefaultPorts are what `make run` uses and docs/architecture.md names.
func DefaultPorts() Ports {
	return Ports{Entra: 7070, Task: 7071, Notification: 7072, Audit: 7073, KeyVault: 7074, Traces: 7075}
}

// SPAOrigin is the local SPA's origin, allowed by every app's CORS.
const SPAOrigin = "http://localhost:3000"

// DefaultAuditSweepSchedule is the Task API's AUDIT_SWEEP_SCHEDULE in a
// Stack (AppEnv can change it): the NCRONTAB schedule of its sweep timer.
const DefaultAuditSweepSchedule = "0 */1 * * * *"

// KeyVaultSecretName is the vault secret that holds the Task API's client
// secret (downstream's default name).
const KeyVaultSecretName = "task-api-client-secret"

// Options configure [Start].
type Options struct {
	// Root is the repository root, where host.json and functions/<app>/
	// are; "" means the current directory.
	Root string
	// StateDir keeps the emulator's CA and keys (StateDir/entra) and the
	// apps' data (StateDir/data/<app>); "" means Root/.state.
	StateDir string
	// BinDir holds the handlers (see [Build]; Start does not build);
	// "" means StateDir/bin.
	BinDir string
	// Ports: zero values pick free loopback ports (tests); use
	// [DefaultPorts] for those of docs/architecture.md.
	Ports Ports
	// AppEnv adds or overrides settings per app name ("task", ...).
	AppEnv map[string]map[string]string
	// Output receives the apps' and emulators' logs, one prefixed line per
	// Write, until Close returns; nil means os.Stderr.
	Output io.Writer
	// EntraDirectory is the emulated directory; nil means
	// entra.DefaultDirectory(). The apps' settings name the default
	// directory's ids whatever it holds.
	EntraDirectory *entra.Directory
	// TimersManual turns off the scheduled firing of the apps' timer
	// functions: they run only through [Stack.Invoke] (tests).
	TimersManual bool
	// SPADir, when set, is a built SPA (web/dist) served at SPAOrigin
	// (see spa.go).
	SPADir string
	// Telemetry says where the apps export spans and metrics; the zero
	// value runs devstack's trace receiver (telemetry.go).
	Telemetry Telemetry
}

// Stack is the running system. Its methods are safe for concurrent use.
type Stack struct {
	// Entra is the Entra ID emulator (its HTTPClient trusts the CA of both
	// emulators).
	Entra *entra.Server
	// Vault is the Key Vault emulator.
	Vault *keyvault.Server

	stateDir string
	caFile   string
	out      *funchost.SyncWriter
	hosts    map[string]*funchost.Host
	env      map[string]map[string]string

	sink         *otlpsink.Sink
	sinkURL      string
	otlpEndpoint string

	cancel    context.CancelFunc // ends the emulators
	serveDone []chan error

	closeOnce sync.Once
	closeErr  error
}

// Start starts the emulators in process and the three apps, each behind a
// [funchost.Host], with the settings a Functions host would pass them, and
// returns once every app answers. ctx bounds the start only: the stack runs
// until [Stack.Close]. On failure everything started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o, err = resolve(o); err != nil {
		return nil, err
	}
	out := funchost.NewSyncWriter(o.Output)
	ls, err := bindPorts(o)
	if err != nil {
		return nil, err
	}
	s := &Stack{stateDir: o.StateDir, out: out, hosts: map[string]*funchost.Host{}, env: map[string]map[string]string{}}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	defer func() {
		if err != nil {
			ls.close()
			err = errors.Join(err, s.Close())
		}
	}()
	if err := s.startEmulators(runCtx, o, ls); err != nil {
		return nil, err
	}
	if err := s.startApps(ctx, o, ls); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve fills in Options' defaults as absolute paths and checks that
// AppEnv names apps and that the handlers are built.
func resolve(o Options) (Options, error) {
	if o.Root == "" {
		o.Root = "."
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".state")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.StateDir, "bin")
	}
	for _, p := range []*string{&o.Root, &o.StateDir, &o.BinDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return o, fmt.Errorf("devstack: %w", err)
		}
		*p = abs
	}
	if o.Output == nil {
		o.Output = os.Stderr
	}
	for app := range o.AppEnv {
		if !slices.Contains(Apps(), app) {
			return o, fmt.Errorf("devstack: AppEnv names %q; the apps are %s", app, strings.Join(Apps(), ", "))
		}
	}
	for _, app := range Apps() {
		if _, err := os.Stat(binary(o.BinDir, app)); err != nil {
			return o, fmt.Errorf("devstack: the %s handler is not built (%w); run devstack.Build or `go run ./cmd/devstack` first", app, err)
		}
	}
	return o, nil
}

// listeners are the stack's bound ports; each is set to nil once something
// serves it (and so owns it).
type listeners struct {
	entra, vault, spa, traces net.Listener
	apps                      map[string]net.Listener
}

// bindPorts binds every port first: the apps' settings name each other's
// URLs, and a port in use should fail the start before anything runs.
func bindPorts(o Options) (_ *listeners, err error) {
	ls := &listeners{apps: map[string]net.Listener{}}
	defer func() {
		if err != nil {
			ls.close()
		}
	}()
	if ls.entra, err = listen("Entra emulator", o.Ports.Entra); err != nil {
		return nil, err
	}
	if ls.vault, err = listen("Key Vault emulator", o.Ports.KeyVault); err != nil {
		return nil, err
	}
	if o.SPADir != "" {
		if ls.spa, err = listen("SPA", SPAPort); err != nil {
			return nil, err
		}
	}
	if o.Telemetry.RunsReceiver() {
		if ls.traces, err = listen("trace receiver", o.Ports.Traces); err != nil {
			return nil, err
		}
	}
	for app, port := range map[string]int{AppTask: o.Ports.Task, AppNotification: o.Ports.Notification, AppAudit: o.Ports.Audit} {
		if ls.apps[app], err = listen(app, port); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

func listen(what string, port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("devstack: %s: 127.0.0.1:%d is in use (is another devstack running?): %w", what, port, err)
		}
		return nil, fmt.Errorf("devstack: %s: %w", what, err)
	}
	return l, nil
}

// close closes the listeners nothing serves yet.
func (ls *listeners) close() {
	for _, l := range append([]net.Listener{ls.entra, ls.vault, ls.spa, ls.traces}, slices.Collect(maps.Values(ls.apps))...) {
		if l != nil {
			l.Close()
		}
	}
}

// startEmulators starts the Entra and Key Vault emulators, and the SPA's
// server if asked, on their listeners until runCtx ends.
func (s *Stack) startEmulators(runCtx context.Context, o Options, ls *listeners) (err error) {
	entraDir := filepath.Join(o.StateDir, "entra")
	if err := os.MkdirAll(entraDir, 0o700); err != nil { // it holds the CA's key
		return fmt.Errorf("devstack: %w", err)
	}
	s.Entra, err = entra.New(entra.Config{
		BaseURL:   "https://" + ls.entra.Addr().String(),
		Directory: o.EntraDirectory,
		StateDir:  entraDir,
		Logger:    slog.New(slog.NewTextHandler(funchost.PrefixLines(s.out, "[entra] "), nil)),
	})
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	entraL := ls.entra
	ls.entra = nil
	s.serve(func() error { return s.Entra.ServeTLS(runCtx, entraL) })
	s.caFile = filepath.Join(entraDir, "ca.pem")
	if _, err := os.Stat(s.caFile); err != nil {
		return fmt.Errorf("devstack: the Entra emulator wrote no CA: %w", err)
	}
	s.Vault, err = keyvault.New(runCtx, keyvault.Config{
		BaseURL:    "https://" + ls.vault.Addr().String(),
		Authority:  s.Entra.BaseURL(),
		TenantID:   entra.HomeTenantID,
		HTTPClient: s.Entra.HTTPClient(),
		Secrets:    map[string]string{KeyVaultSecretName: entra.TaskAPISecret},
		Readers:    []string{entra.TaskAPIIdentityObjectID},
		Logger:     slog.New(slog.NewTextHandler(funchost.PrefixLines(s.out, "[keyvault] "), nil)),
	})
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	vaultL := ls.vault
	ls.vault = nil
	s.serve(func() error { return s.Vault.ServeTLS(runCtx, vaultL, s.Entra.TLSConfig()) })
	if spaL := ls.spa; spaL != nil {
		ls.spa = nil
		s.serve(func() error { return serveSPA(runCtx, spaL, o.SPADir) })
	}
	if tracesL := ls.traces; tracesL != nil {
		ls.traces = nil
		s.sink = otlpsink.New(otlpsink.DefaultLimits())
		s.sinkURL = "http://" + tracesL.Addr().String()
		s.serve(func() error { return s.sink.Serve(runCtx, tracesL) })
	}
	return nil
}

// startApps puts each app behind a funchost.Host on its listener and
// starts the three handlers together.
func (s *Stack) startApps(ctx context.Context, o Options, ls *listeners) error {
	urls := map[string]string{}
	for app, l := range ls.apps {
		urls[app] = "http://" + l.Addr().String()
	}
	otel := o.Telemetry.settings(s.sinkURL)
	s.otlpEndpoint = otel[EnvOTLPEndpoint]
	for _, app := range Apps() {
		env := s.settings(app, o.StateDir, urls)
		maps.Copy(env, otel)
		maps.Copy(env, o.AppEnv[app])
		s.env[app] = env
		if dataDir := env["DATA_DIR"]; dataDir != "" {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("devstack: %w", err)
			}
		}
		h, err := funchost.NewHost(funchost.HostConfig{
			Name:         app,
			Command:      binary(o.BinDir, app),
			AppDir:       filepath.Join(o.Root, "functions", app),
			HostJSON:     filepath.Join(o.Root, "host.json"),
			Listener:     ls.apps[app],
			Env:          childEnv(env),
			Output:       s.out,
			TimersManual: o.TimersManual,
			StateDir:     filepath.Join(o.StateDir, "host", app),
		})
		if err != nil {
			return err
		}
		delete(ls.apps, app) // the host owns it
		s.hosts[app] = h
	}
	var wg sync.WaitGroup
	errs := make([]error, len(Apps()))
	for i, app := range Apps() {
		wg.Go(func() { errs[i] = s.hosts[app].Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Stack) serve(f func() error) {
	done := make(chan error, 1)
	s.serveDone = append(s.serveDone, done)
	go func() { done <- f() }()
}

// settings are what the Functions host would pass an app as its app
// settings, locally.
func (s *Stack) settings(app, stateDir string, urls map[string]string) map[string]string {
	env := map[string]string{
		"AZURE_AUTHORITY_HOST": s.Entra.BaseURL(),
		"AZURE_HOME_TENANT_ID": entra.HomeTenantID,
		"EXTRA_CA_FILE":        s.caFile,
		"DATA_DIR":             filepath.Join(stateDir, "data", app),
		"ALLOWED_ORIGINS":      SPAOrigin,
	}
	tenants := entra.HomeTenantID + "," + entra.SecondTenantID
	switch app {
	case AppTask:
		maps.Copy(env, map[string]string{
			"AZURE_API_CLIENT_ID":          entra.TaskAPIClientID,
			"AZURE_NOTIFICATION_CLIENT_ID": entra.NotificationClientID,
			"NOTIFICATION_URL":             urls[AppNotification],
			"AZURE_AUDIT_CLIENT_ID":        entra.AuditClientID,
			"AUDIT_URL":                    urls[AppAudit],
			"ALLOWED_TENANT_IDS":           tenants,
			// The audit outbox's sweep (functions/task/sweep): every
			// minute, as in the example settings.
			"AUDIT_SWEEP_SCHEDULE": DefaultAuditSweepSchedule,
			// The Task API reads its secret from Key Vault with its
			// managed identity, App Service style, as in Azure.
			appconfig.EnvCredential:      appconfig.ModeKeyVaultSecret,
			appconfig.EnvKeyVaultURL:     s.Vault.BaseURL(),
			appconfig.EnvManagedIdentity: entra.TaskAPIIdentityClientID,
			"IDENTITY_ENDPOINT":          s.Entra.BaseURL() + entra.IdentityEndpointPath,
			"IDENTITY_HEADER":            entra.DevIdentityHeader,
		})
	case AppNotification:
		maps.Copy(env, map[string]string{
			"AZURE_NOTIFICATION_CLIENT_ID": entra.NotificationClientID,
			"AZURE_API_CLIENT_ID":          entra.TaskAPIClientID,
			"ALLOWED_TENANT_IDS":           tenants,
		})
	case AppAudit:
		maps.Copy(env, map[string]string{
			"AZURE_AUDIT_CLIENT_ID": entra.AuditClientID,
			"AZURE_API_CLIENT_ID":   entra.TaskAPIClientID,
		})
	}
	return env
}

// childEnv is an app's whole environment: its settings plus PATH, HOME and
// TMPDIR from this process, and nothing else, so no AZURE_* or IDENTITY_*
// variable of the developer's shell changes what the app does.
func childEnv(settings map[string]string) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, settings)
	return env
}

// URL is an app's public base URL, e.g. http://127.0.0.1:7071; "" for an
// unknown app.
func (s *Stack) URL(app string) string {
	if h := s.hosts[app]; h != nil {
		return h.URL()
	}
	return ""
}

// CAFile is the PEM of the emulators' CA (StateDir/entra/ca.pem).
func (s *Stack) CAFile() string { return s.caFile }

// StateDir is the stack's state directory.
func (s *Stack) StateDir() string { return s.stateDir }

// Settings are the app settings an app was started with (AppEnv applied),
// without the inherited PATH, HOME and TMPDIR; nil for an unknown app.
func (s *Stack) Settings(app string) map[string]string { return maps.Clone(s.env[app]) }

// PID is the process id of an app's handler, 0 when it is not running.
func (s *Stack) PID(app string) int {
	if h := s.hosts[app]; h != nil {
		return h.PID()
	}
	return 0
}

func (s *Stack) host(app string) (*funchost.Host, error) {
	h := s.hosts[app]
	if h == nil {
		return nil, fmt.Errorf("devstack: no app %q; the apps are %s", app, strings.Join(Apps(), ", "))
	}
	return h, nil
}

// Invoke runs an app's timer function now, as the host's admin endpoint
// does, and returns the logs its handler answered (see [Host.Invoke]).
func (s *Stack) Invoke(ctx context.Context, app, function string) ([]string, error) {
	h, err := s.host(app)
	if err != nil {
		return nil, err
	}
	return h.Invoke(ctx, function)
}

// StopApp stops an app's handler as the host does (SIGKILL, after a timer
// run in flight finishes) and waits for it. The host does not restart it:
// its address stays served, and requests are answered 502 problem+json
// until [Stack.StartApp].
func (s *Stack) StopApp(app string) error {
	h, err := s.host(app)
	if err != nil {
		return err
	}
	return h.Stop()
}

// KillApp kills an app's handler with SIGKILL at once, timer runs
// included, and waits for it; the host does not restart it (a crash from
// outside, kill -9 of its pid, is restarted: see funchost.Host).
func (s *Stack) KillApp(app string) error {
	h, err := s.host(app)
	if err != nil {
		return err
	}
	return h.Kill()
}

// StartApp starts a stopped app's handler again, with the same settings
// behind the same address, and waits until it answers.
func (s *Stack) StartApp(ctx context.Context, app string) error {
	h, err := s.host(app)
	if err != nil {
		return err
	}
	return h.Start(ctx)
}

// Close stops the apps, then the emulators, and waits for all of them. It
// is idempotent: later calls return the first call's result.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var wg sync.WaitGroup
		errs := make([]error, len(Apps()))
		for i, app := range Apps() {
			if h := s.hosts[app]; h != nil {
				wg.Go(func() { errs[i] = h.Close() })
			}
		}
		wg.Wait()
		if s.Entra != nil {
			// HTTP/2 servers wait for idle clients; the emulators share
			// this transport with every in-process client.
			s.Entra.HTTPClient().CloseIdleConnections()
		}
		s.cancel()
		for _, done := range s.serveDone {
			if err := <-done; err != nil {
				errs = append(errs, fmt.Errorf("devstack: emulator: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
		s.out.Close() // nothing more goes to Options.Output
	})
	return s.closeErr
}
