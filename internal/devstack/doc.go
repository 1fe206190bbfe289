// Package devstack runs the whole system locally, for `make run`, `make
// demo` and end-to-end tests: the Entra ID and Key Vault emulators in
// process, and the three Function Apps (Task API, Notification Service,
// Audit Service) as separate processes, each behind a [funchost.Host] that
// plays the Azure Functions host's part.
//
// [Build] compiles the three handlers; [Start] starts a [Stack] on the
// ports of docs/architecture.md ([DefaultPorts]) or, for tests, on free loopback ports.
// Every listener is on 127.0.0.1.
//
// [BuildSPA] rebuilds the SPA (web/dist) only when its sources changed
// since its last build, and runs npm ci only when package-lock.json did.
//
// Each app runs behind a [funchost.Host] (internal/funchost), which plays
// the Azure Functions host: routing, forwarding, timers, and the handler
// process with the host's restart policy. Its package documentation lists
// what it follows of the real host and what differs. devstack only
// orchestrates: bind the ports, start the emulators, start the apps behind
// funchost with the settings the host would pass them (plus PATH, HOME and
// TMPDIR, and nothing else of this process's environment), and keep each
// app's timer schedule status in StateDir/host/<app>.
//
// It also runs devstack's trace receiver (internal/otlpsink, on
// [Ports].Traces, 7075 by default) and gives every app
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at it, so the apps' spans can be
// read back ([Stack.Traces], `devstack trace`); [Options].Telemetry turns
// that off or sends the apps to the developer's own endpoint instead.
package devstack
