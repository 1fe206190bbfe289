package funchost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoff-dev/handoff/handler/problem"
)

// The variables the host adds to a worker's environment
// (src/WebJobs.Script/Workers/Http/HttpWorkerConstants.cs:14-18, set in
// HttpWorkerProcess.cs:58-62).
const (
	EnvCustomHandlerPort     = "FUNCTIONS_CUSTOMHANDLER_PORT"
	EnvCustomHandlerWorkerID = "FUNCTIONS_CUSTOMHANDLER_WORKER_ID"
	EnvHTTPWorkerPort        = "FUNCTIONS_HTTPWORKER_PORT"
	EnvHTTPWorkerID          = "FUNCTIONS_HTTPWORKER_ID"
	EnvAppRootPath           = "FUNCTIONS_APP_ROOT_PATH"
)

// HostVersion is what the simulator sends as X-Azure-Functions-HostVersion
// and in its User-Agent: the host release whose source these rules follow
// (Azure/azure-functions-host 4.1037.0).
const HostVersion = "4.1037.0"

// The host's own limits, as the Functions host applies them.
const (
	// DefaultStartTimeout is how long a handler has to answer GET / after
	// it starts (the host's customHandler initialization timeout, 30 s:
	// HttpWorkerOptions.InitializationTimeout).
	DefaultStartTimeout = 30 * time.Second
	// DefaultStopTimeout is how long a timer run in flight gets to finish
	// when the handler is stopped (Stop, not Kill) before the handler is
	// killed.
	DefaultStopTimeout = 10 * time.Second
	// ErrorExitThreshold: the third error exit of a worker within
	// ErrorExitWindow of the previous one stops the host instead of
	// restarting the worker (HttpFunctionInvocationDispatcher.cs:55, :145-157).
	ErrorExitThreshold = 3
	// ErrorExitWindow: an error exit more than this after the previous one
	// starts the count again (WorkerConstants.cs:59,
	// HttpFunctionInvocationDispatcher.cs:159-173).
	ErrorExitWindow = 30 * time.Minute
	// IntentionalRestartExitCode: a worker that exits with it is restarted
	// without counting an error (WorkerConstants.cs:63, WorkerProcess.cs:173).
	IntentionalRestartExitCode = 200
	// killWait is how long the host waits for a killed worker
	// (WorkerProcess.cs:29, :269-270); the simulator then keeps waiting, but
	// says so.
	killWait = time.Second
)

// HostConfig configures a [Host].
type HostConfig struct {
	// Name of the app, e.g. "task": the prefix of its log lines.
	Name string
	// Command is the handler binary.
	Command string
	// AppDir is the app's folder: one sub-folder per function, each with a
	// function.json. It is also the handler's working directory, as under
	// the real host (host.json's workingDirectory left empty), and its
	// FUNCTIONS_APP_ROOT_PATH.
	AppDir string
	// HostJSON is the path of host.json, for extensions.http.routePrefix;
	// "" means the default prefix "api".
	HostJSON string
	// Listener serves the app's public address; once NewHost succeeds
	// the Host owns it (Close closes it).
	Listener net.Listener
	// Env is the host's environment (in Azure: the app settings and the
	// platform's variables), which the handler inherits whole, plus the
	// variables the host adds (EnvCustomHandlerPort...). Nothing is
	// inherited from this process.
	Env map[string]string
	// Output receives the handler's stdout lines prefixed "[name] " (the
	// host logs them at Information), its stderr lines prefixed
	// "[name error] " or, when they contain "warn", "[name warning] " (Error
	// and Warning), and the host's own messages prefixed "[name host] ",
	// one line per Write. nil discards.
	Output io.Writer
	// StartTimeout: 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout: 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// HoldTimeout bounds how long a request waits for a worker that is
	// starting or restarting; 0 means (ErrorExitThreshold+1) × StartTimeout,
	// as the host's WorkerFunctionInvoker.cs:127 waits.
	HoldTimeout time.Duration
	// TimersManual turns off the scheduled firing of timer functions:
	// they run only through [Host.Invoke] (tests).
	TimersManual bool
	// StateDir, when set, keeps the timers' schedule status across
	// restarts (as the host keeps it in storage with useMonitor), so a
	// missed occurrence fires IsPastDue at the next start.
	StateDir string
	// Now is the clock of the restart policy and the timers' status; nil
	// means time.Now (tests inject one).
	Now func() time.Time
}

// Host plays the Functions host's part for one app: it runs the handler
// process (restarting it as the host does), forwards the app's declared
// routes to it, and invokes its timer functions on their schedules while it
// runs. Its methods are safe for concurrent use; Start, Stop, Kill, Close
// and the restarts run one at a time.
type Host struct {
	cfg       HostConfig
	routes    []HTTPRoute
	timers    []*timer
	url       string
	srv       *http.Server
	serveDone chan error
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	log       *lineWriter // the host's own messages
	target    atomic.Pointer[url.URL]

	op       sync.Mutex // serializes Start, Stop, Kill, Close and restarts
	mu       sync.Mutex // guards the fields below
	proc     *process
	timerRun *timerRun     // the timers' scheduling while the handler runs
	starting chan struct{} // non-nil while a worker starts: closed when it is ready or failed
	abandon  chan struct{} // closed (and replaced) by a stop: held requests give up
	want     bool          // a worker should run: Start was called, and no Stop, Kill or give-up since
	errExits []time.Time   // the error exits counted toward ErrorExitThreshold
	down     string        // why no worker runs, for the answers meanwhile
	closed   bool
}

// NewHost reads the app's function.json files (resolving the %SETTING%
// references of timer schedules from cfg.Env: an unset one is an error) and
// serves its public address at once; requests are answered 502 until
// [Host.Start].
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Name == "" || cfg.Command == "" || cfg.AppDir == "" || cfg.Listener == nil {
		return nil, errors.New("funchost: HostConfig needs Name, Command, AppDir and Listener")
	}
	cfg = withDefaults(cfg)
	routes, timers, err := loadApp(cfg)
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg:       cfg,
		routes:    routes,
		timers:    newTimers(timers),
		url:       "http://" + cfg.Listener.Addr().String(),
		serveDone: make(chan error, 1),
		log:       newLineWriter(cfg.Output, "["+cfg.Name+" host] "),
		down:      "the " + cfg.Name + " handler is not running",
		abandon:   make(chan struct{}),
		transport: &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	h.proxy = h.newProxy()
	h.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { h.serveDone <- h.srv.Serve(cfg.Listener) }()
	return h, nil
}

func withDefaults(cfg HostConfig) HostConfig {
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	cfg.Output = &SyncWriter{w: cfg.Output}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = (ErrorExitThreshold + 1) * cfg.StartTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// loadApp reads host.json's route prefix and the app's triggers.
func loadApp(cfg HostConfig) ([]HTTPRoute, []TimerFunction, error) {
	prefix := "api"
	if cfg.HostJSON != "" {
		p, err := RoutePrefix(cfg.HostJSON)
		if err != nil {
			return nil, nil, err
		}
		prefix = p
	}
	routes, err := LoadRoutes(cfg.AppDir, prefix)
	if err != nil {
		return nil, nil, err
	}
	timers, err := LoadTimers(cfg.AppDir, cfg.Env)
	if err != nil {
		return nil, nil, err
	}
	if len(routes) == 0 && len(timers) == 0 {
		return nil, nil, fmt.Errorf("funchost: %s declares no HTTP or timer trigger", cfg.AppDir)
	}
	return routes, timers, nil
}

type targetKey struct{}

// URL is the app's public base URL, e.g. http://127.0.0.1:7071.
func (h *Host) URL() string { return h.url }

// AppDir is the app's folder: the handler's working directory and its
// FUNCTIONS_APP_ROOT_PATH.
func (h *Host) AppDir() string { return h.cfg.AppDir }

// Routes are the HTTP triggers the app declares.
func (h *Host) Routes() []HTTPRoute { return slices.Clone(h.routes) }

// ServeHTTP routes as the host does: declared routes to the handler,
// everything else answered 404 here. Timer functions have no route: the
// handler's /<function> path is not reachable through the host.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A declared path with an undeclared method is 404 too: the host's
	// route carries an HttpMethodRouteConstraint
	// (WebScriptHostHttpRoutesManager.cs:54-56), so no route matches. ASP.NET
	// answers it with an empty 404, and so do we.
	if !h.match(r.Method, r.URL.Path) && !h.preflight(r) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	target := h.target.Load()
	if target == nil {
		var err error
		if target, err = h.awaitWorker(r); err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, errHoldTimeout) {
				status = http.StatusServiceUnavailable
			}
			problem.Error(w, status, err.Error())
			return
		}
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
}

var errHoldTimeout = errors.New("the handler did not become ready in time")

// awaitWorker returns the running worker's address, holding the request
// while a worker starts or restarts (at most HoldTimeout), as the host's
// WorkerFunctionInvoker.cs:58-64, :119-138 delays an invocation until the
// dispatcher is initialized.
func (h *Host) awaitWorker(r *http.Request) (*url.URL, error) {
	ctx := r.Context()
	deadline := time.NewTimer(h.cfg.HoldTimeout)
	defer deadline.Stop()
	for logged := false; ; logged = true {
		if t := h.target.Load(); t != nil {
			return t, nil
		}
		h.mu.Lock()
		wait, abandon, down := h.starting, h.abandon, h.down
		h.mu.Unlock()
		if wait == nil {
			if t := h.target.Load(); t != nil { // it became ready meanwhile
				return t, nil
			}
			return nil, errors.New(down)
		}
		if !logged {
			h.log.printf("%s %s waits for the handler to start (at most %s)", r.Method, r.URL.Path, h.cfg.HoldTimeout)
		}
		select {
		case <-wait:
		case <-abandon:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%w (%s)", errHoldTimeout, h.cfg.HoldTimeout)
		}
	}
}

// Match returns the declared route the host forwards a request of method
// and path through, if any: the first, in function name order, whose
// template matches path and whose methods (none: all) include method.
func (h *Host) Match(method, path string) (HTTPRoute, bool) {
	segs := splitPath(path)
	for _, rt := range h.routes {
		if rt.matches(segs) && (len(rt.Methods) == 0 || slices.Contains(rt.Methods, strings.ToUpper(method))) {
			return rt, true
		}
	}
	return HTTPRoute{}, false
}

func (h *Host) match(method, path string) bool {
	_, ok := h.Match(method, path)
	return ok
}

// preflight reports whether r is a CORS preflight on a declared path. In
// Azure the platform answers those before the host (CORS is a site
// setting); locally the handler plays that part (ALLOWED_ORIGINS), so the
// simulator forwards them whatever methods the route declares.
func (h *Host) preflight(r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	segs := splitPath(r.URL.Path)
	return slices.ContainsFunc(h.routes, func(rt HTTPRoute) bool { return rt.matches(segs) })
}
