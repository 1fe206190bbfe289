// Package devstack runs the whole system locally, for `make run`, `make
// demo` and end-to-end tests: the Entra ID and Key Vault emulators in
// process, and the three Function Apps (Task API, Notification Service,
// Audit Service) as separate processes, each behind a [Host] that plays the
// Azure Functions host's part.
//
// [Build] compiles the three handlers; [Start] starts a [Stack] on the
// ports of docs/architecture.md ([DefaultPorts]) or, for tests, on free loopback ports.
// Every listener is on 127.0.0.1.
//
// Each handler runs in a process group of its own, so a terminal's Ctrl-C
// reaches devstack alone, which stops the handlers in order. On Linux a
// handler also gets SIGKILL when devstack dies without stopping it (killed
// with SIGKILL, say): the parent-death signal, set from one OS thread that
// lives as long as devstack (proc_linux.go). Elsewhere there is no such
// signal: a devstack killed with SIGKILL leaves its handlers running (a
// limit; SIGINT and SIGTERM stop them).
//
// [BuildSPA] rebuilds the SPA (web/dist) only when its sources changed
// since its last build, and runs npm ci only when package-lock.json did.
//
// # The host simulator
//
// The Functions host cannot be installed offline, so [Host] does what the
// host does for a custom handler with enableForwardingHttpRequest (see
// https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers):
//
//   - it starts the handler binary with FUNCTIONS_CUSTOMHANDLER_PORT set to
//     a free loopback port and the app settings as its environment (and
//     nothing else: no variable of the parent leaks in);
//   - it polls GET http://127.0.0.1:<port>/ until any answer, for at most 30 s;
//   - it serves the app's public address and forwards each request whose
//     path and method an httpTrigger in the app's <function>/function.json
//     declares (with host.json's route prefix, "api" by default) to the
//     handler, with the same method, path, query, headers and body, and
//     copies the response back. {name} matches one path segment, {*name} the
//     rest of the path; literal segments match case-insensitively and one
//     trailing slash is ignored, as ASP.NET routing does;
//   - an undeclared path is answered 404 and a declared path with an
//     undeclared method 405 (with Allow), both as problem+json;
//   - a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     on a declared path is forwarded whatever the declared methods, since
//     locally the handler answers CORS (ALLOWED_ORIGINS);
//   - while the handler is not running (not started yet, stopped, crashed),
//     requests on declared routes are answered 502 problem+json at once (the
//     real host would restart the worker and answer 5xx meanwhile);
//   - it stops the handler with SIGTERM, then SIGKILL after 10 s, and
//     reports every exit on its output;
//   - it runs each timerTrigger function (function name = its folder) on its
//     six-field NCRONTAB schedule (funchost.ParseNCRONTAB; a %SETTING%
//     reference is resolved from the app settings, and an unset one fails
//     NewHost, hence Start, naming it), evaluated in UTC, while the handler
//     runs: it POSTs {"Data":{"<binding>":<timer info>},"Metadata":{"sys":…}}
//     to the handler at /<function> and reads {"Outputs","Logs",
//     "ReturnValue"} back, logging each firing, each line of Logs and the
//     outcome as "[<app> host] <function>: …". A non-2xx answer is a failed
//     run. As the host's TimerListener, runs of a function never overlap
//     (an occurrence due while one runs is skipped, and if the next
//     occurrence passed during a run it fires right after it), IsPastDue is
//     false, and ScheduleStatus (when useMonitor is on: by default unless the
//     schedule fires more than once a minute) carries the previous run as
//     Last and LastUpdated (0001-01-01T00:00:00 before the first) and the
//     occurrence being run as Next. runOnStartup runs it once at each start.
//     Stopping the handler stops its timers (a run in flight gets the stop
//     timeout to finish). [Host.Invoke] runs one now, as the host's admin
//     endpoint does, and returns its Logs; HostConfig.TimersManual (and
//     Options.TimersManual) turns scheduled firing off for tests;
//   - a timer function is not reachable over HTTP: /<function> is answered
//     404 like any undeclared path.
//
// What it does NOT cover of the real host: the extension bundle; bindings
// other than HTTP and timer (no queue or other triggers, no output
// bindings); the timer's schedule monitor across restarts (no past-due
// runs: the record lives in memory, so IsPastDue is always false), the
// singleton lock across instances, WEBSITE_TIME_ZONE and TimeSpan
// schedules (hh:mm:ss); host-level and function keys (authLevel is
// ignored: every route is anonymous); the host's timeouts (functionTimeout,
// but for a 5-minute bound on timer runs; the 230 s HTTP limit), request
// size limits, concurrency, scale-out and worker restarts; Application
// Insights and the host's own logs; the platform's CORS and authentication
// (Easy Auth); the admin and runtime endpoints (/admin, /runtime/webhooks:
// [Host.Invoke] stands in for /admin/functions/{name}) and the default page
// at /; route constraints ({id:int} matches any segment) and segments
// mixing literals and parameters, which are refused.
package devstack
