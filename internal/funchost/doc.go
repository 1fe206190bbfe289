// Package funchost plays the Azure Functions host for one custom-handler
// app, locally and offline (the real host cannot run offline): it reads
// host.json's route prefix and the app's <function>/function.json files,
// routes and forwards HTTP triggers as the host does, fires timer triggers
// on their six-field NCRONTAB schedules ([ParseNCRONTAB]), and runs the
// handler process with the host's start, restart and stop rules. devstack
// (internal/devstack) puts each of the three apps behind a [Host].
//
// A custom handler needs none of this (it is handed requests and a
// funcapp.TimerInfo), so it lives here, outside the library.
//
// # What it follows of the real host
//
// Read against Azure/azure-functions-host 4.1037.0 (files under
// src/WebJobs.Script/, cited at each rule in the code) and
// azure-webjobs-sdk-extensions' timer trigger:
//
//   - Start: the handler runs in the app's folder with the host's
//     environment (HostConfig.Env) plus FUNCTIONS_CUSTOMHANDLER_PORT,
//     FUNCTIONS_CUSTOMHANDLER_WORKER_ID, FUNCTIONS_HTTPWORKER_PORT,
//     FUNCTIONS_HTTPWORKER_ID and FUNCTIONS_APP_ROOT_PATH
//     (HttpWorkerProcess.cs); it is ready once GET / answers anything, within
//     StartTimeout (30 s), asked through the client that forwards requests
//     (DefaultHttpWorkerService.cs), so the first request reuses the
//     probe's connection.
//   - Exits (WorkerProcess.cs, HttpFunctionInvocationDispatcher.cs): exit 0
//     is not restarted (the app stays down); exit 200 is restarted without
//     counting; any other exit, a signal included, is an error and is
//     restarted at once, unless it is the third error within 30 minutes of
//     the previous one, which stops the host (requests are then answered 502
//     saying so, until Start). A restart that fails counts as an error too.
//   - Requests that arrive while a worker starts or restarts wait for it
//     (WorkerFunctionInvoker.cs), at most HoldTimeout ((3+1) × StartTimeout,
//     2 minutes by default), then 503.
//   - Stop kills the handler with SIGKILL (WorkerProcess.Dispose): no
//     graceful shutdown, ever. A timer run in flight gets StopTimeout first.
//   - Routing: an httpTrigger's route (default: the function's name) under
//     host.json's extensions.http.routePrefix ("api" by default); literal
//     segments match case-insensitively, one trailing slash is ignored,
//     {name} is one segment, {name?} an optional last one, {*name} the rest.
//     A path no route matches, and a declared path with an undeclared method
//     (the route's HttpMethodRouteConstraint fails:
//     WebScriptHostHttpRoutesManager.cs), are an empty 404.
//   - Forwarding (enableForwardingHttpRequest; DefaultHttpWorkerService.cs,
//     HttpRequestExtensions.cs): same method and path; every header, plus
//     X-Azure-Functions-HostVersion, X-Azure-Functions-InvocationId and
//     "Azure-Functions-Host/<version>" appended to the User-Agent; the query
//     rebuilt from a dictionary (repeated keys joined with commas, keys and
//     values percent-encoded again: [RebuildQuery]); the body, Content-Type
//     and Content-Length only when Content-Length > 0 (a chunked body arrives
//     empty), the other content headers never; a traceparent of the host's
//     (a new trace, sampled) when the client sent none, as the host's
//     HttpClient adds its Activity's (DiagnosticsHandler.cs). Timer
//     invocations carry none: the function starts its own trace.
//   - Logs: the handler's stdout lines are Information ("[app] "), its stderr
//     lines Error ("[app error] ") or Warning when they contain "warn"
//     ("[app warning] "), as the custom handler's
//     UseStdErrorStreamForErrorsOnly makes the host log them.
//   - Timers (TimerListener, ScheduleMonitor): runs never overlap; an
//     occurrence due during a run is skipped; runOnStartup; useMonitor
//     (default: on unless the schedule fires more than once a minute) sends
//     a ScheduleStatus and, with HostConfig.StateDir, keeps it across
//     restarts, so an occurrence missed while the app was down runs at start
//     with IsPastDue true; [Host.Invoke] stands for the admin endpoint
//     (POST /admin/functions/{name}).
//
// # What remains different
//
//   - Everything beyond HTTP and timer triggers: the extension bundle, other
//     triggers and bindings, output bindings.
//   - The timer's storage lock (the singleton across instances) and its
//     dependency on AzureWebJobsStorage: the simulator's timers run without
//     storage, where the real host's do not run at all when storage is
//     unreachable. WEBSITE_TIME_ZONE and TimeSpan schedules (hh:mm:ss).
//   - The host's environment is HostConfig.Env (devstack: the app settings
//     plus PATH, HOME and TMPDIR), not this process's whole environment, so
//     a developer's shell does not leak into the apps; in Azure the host's
//     environment is the app settings plus the platform's variables.
//   - enableProxyingHttpRequest (the newer proxy mode, which streams
//     responses) is not simulated: host.json uses
//     enableForwardingHttpRequest, the mode the host source read here
//     implements (docs/architecture.md says why).
//   - A handler that does not answer a forwarded request is a 502
//     problem+json naming the app, where the host answers 500; after the
//     host stops (third error) the simulator keeps serving 502 with the
//     reason, where Azure's front end answers 503 until the platform restarts
//     the host; a hold that times out is a 503, where the host stops itself.
//   - Keys and authLevel (every route is anonymous), Easy Auth, the
//     platform's CORS (a CORS preflight on a declared path is forwarded to
//     the handler, which answers CORS locally with ALLOWED_ORIGINS), the
//     230 s HTTP limit, functionTimeout (but a 5-minute bound on timer runs),
//     request size limits, concurrency, scale-out, Application Insights and
//     the host's own logs, the admin and runtime endpoints and the default
//     page at /.
//   - Route constraints ({id:int} matches any segment) and segments mixing
//     literals and parameters, which are refused.
//   - On Linux a handler gets SIGKILL when the simulator's process dies
//     without stopping it (the parent-death signal, proc_linux.go);
//     elsewhere a simulator killed with SIGKILL leaves its handler running.
package funchost
