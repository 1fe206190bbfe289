package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoff-dev/handoff/handler/problem"
)

// EnvCustomHandlerPort is the setting the Functions host passes its custom
// handler: the port to listen on.
const EnvCustomHandlerPort = "FUNCTIONS_CUSTOMHANDLER_PORT"

// The host's own limits, as the Functions host applies them.
const (
	// DefaultStartTimeout is how long a handler has to answer GET / after
	// it starts.
	DefaultStartTimeout = 30 * time.Second
	// DefaultStopTimeout is how long a handler has to exit after SIGTERM
	// before it is killed.
	DefaultStopTimeout = 10 * time.Second
)

// HostConfig configures a [Host].
type HostConfig struct {
	// Name of the app, e.g. "task": the prefix of its log lines.
	Name string
	// Command is the handler binary.
	Command string
	// AppDir is the app's folder: one sub-folder per function, each with a
	// function.json. It is also the handler's working directory, as under
	// the real host (host.json's workingDirectory left empty).
	AppDir string
	// HostJSON is the path of host.json, for extensions.http.routePrefix;
	// "" means the default prefix "api".
	HostJSON string
	// Listener serves the app's public address; once NewHost succeeds
	// the Host owns it (Close closes it).
	Listener net.Listener
	// Env is the handler's whole environment (the app settings), besides
	// FUNCTIONS_CUSTOMHANDLER_PORT: nothing is inherited from this process.
	Env map[string]string
	// Output receives the handler's stdout and stderr, line by line,
	// prefixed "[name] ", and the host's own messages (start, readiness,
	// exits, forwarding failures), prefixed "[name host] ", one line per
	// Write. nil discards.
	Output io.Writer
	// StartTimeout: 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout: 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// TimersManual turns off the scheduled firing of timer functions:
	// they run only through [Host.Invoke] (tests).
	TimersManual bool
}

// HTTPRoute is an HTTP trigger a function.json declares.
type HTTPRoute struct {
	// Function is the function's name (its folder).
	Function string
	// Template is the full route, route prefix included, e.g. /api/tasks/{id}.
	Template string
	// Methods are upper case; empty means every method.
	Methods []string

	segs []routeSeg
}

type segKind int

const (
	segLiteral  segKind = iota
	segParam            // {name}: one non-empty segment
	segOptional         // {name?}: one segment or none, last only
	segCatchAll         // {*name}: the rest of the path, last only
)

type routeSeg struct {
	kind    segKind
	literal string
}

// Host plays the Functions host's part for one app: it runs the handler
// process, forwards the app's declared routes to it, and invokes its timer
// functions on their schedules while it runs. Its methods are safe for
// concurrent use; Start, Stop, Kill and Close run one at a time.
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

	op       sync.Mutex // serializes Start, Stop, Kill, Close
	mu       sync.Mutex // guards proc, timerRun and closed
	proc     *process
	timerRun *timerRun // the timers' scheduling while the handler runs
	closed   bool
}

// process is one run of the handler.
type process struct {
	cmd      *exec.Cmd
	target   *url.URL
	done     chan struct{} // closed once it has exited and its output is flushed
	err      error         // its exit, valid once done is closed
	expected atomic.Bool   // the exit was asked for (Stop, Kill)
}

// NewHost reads the app's function.json files (resolving the %SETTING%
// references of timer schedules from cfg.Env: an unset one is an error) and
// serves its public address at once; requests are answered 502 until
// [Host.Start].
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Name == "" || cfg.Command == "" || cfg.AppDir == "" || cfg.Listener == nil {
		return nil, errors.New("devstack: HostConfig needs Name, Command, AppDir and Listener")
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	cfg.Output = &syncWriter{w: cfg.Output}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	prefix := "api"
	if cfg.HostJSON != "" {
		p, err := RoutePrefix(cfg.HostJSON)
		if err != nil {
			return nil, err
		}
		prefix = p
	}
	routes, err := LoadRoutes(cfg.AppDir, prefix)
	if err != nil {
		return nil, err
	}
	timers, err := LoadTimers(cfg.AppDir, cfg.Env)
	if err != nil {
		return nil, err
	}
	if len(routes) == 0 && len(timers) == 0 {
		return nil, fmt.Errorf("devstack: %s declares no HTTP or timer trigger", cfg.AppDir)
	}
	h := &Host{
		cfg:       cfg,
		routes:    routes,
		timers:    newTimers(timers),
		url:       "http://" + cfg.Listener.Addr().String(),
		serveDone: make(chan error, 1),
		log:       newLineWriter(cfg.Output, "["+cfg.Name+" host] "),
		transport: &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*url.URL))
			pr.Out.Host = pr.In.Host
			// Forward the client's headers as received: Rewrite mode drops
			// these before calling us.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport: h.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.log.printf("forwarding %s %s failed: %v", r.Method, r.URL.Path, err)
			problem.Error(w, http.StatusBadGateway, "the "+cfg.Name+" handler did not answer")
		},
	}
	h.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { h.serveDone <- h.srv.Serve(cfg.Listener) }()
	return h, nil
}

type targetKey struct{}

// URL is the app's public base URL, e.g. http://127.0.0.1:7071.
func (h *Host) URL() string { return h.url }

// Routes are the HTTP triggers the app declares.
func (h *Host) Routes() []HTTPRoute { return slices.Clone(h.routes) }

// PID is the handler's process id, 0 when it is not running.
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return 0
	}
	select {
	case <-h.proc.done:
		return 0
	default:
		return h.proc.cmd.Process.Pid
	}
}

// Start starts the handler and waits until it answers GET / (at most
// StartTimeout, and no longer than ctx). On failure the process is killed.
// Starting a running handler is an error.
func (h *Host) Start(ctx context.Context) error {
	h.op.Lock()
	defer h.op.Unlock()
	h.mu.Lock()
	closed, running := h.closed, h.proc != nil && !isDone(h.proc.done)
	h.mu.Unlock()
	if closed {
		return fmt.Errorf("devstack: %s: the host is closed", h.cfg.Name)
	}
	if running {
		return fmt.Errorf("devstack: %s is already running", h.cfg.Name)
	}
	// After a crash the timers of the dead process still run: end them.
	h.mu.Lock()
	stale := h.timerRun
	h.timerRun = nil
	h.mu.Unlock()
	h.endTimers(stale, true)
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("devstack: %s: %w", h.cfg.Name, err)
	}
	cmd := exec.Command(h.cfg.Command)
	cmd.Dir = h.cfg.AppDir
	cmd.Env = []string{EnvCustomHandlerPort + "=" + strconv.Itoa(port)}
	for k, v := range h.cfg.Env {
		if k != EnvCustomHandlerPort {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	sort.Strings(cmd.Env)
	stdout := newLineWriter(h.cfg.Output, "["+h.cfg.Name+"] ")
	stderr := newLineWriter(h.cfg.Output, "["+h.cfg.Name+"] ")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second // stop copying output if a grandchild holds the pipes
	if err := startProcess(cmd); err != nil {
		return fmt.Errorf("devstack: start %s: %w", h.cfg.Name, err)
	}
	p := &process{cmd: cmd, target: &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, done: make(chan struct{})}
	h.mu.Lock()
	h.proc = p
	h.mu.Unlock()
	h.log.printf("started %s (pid %d, handler port %d)", filepath.Base(h.cfg.Command), cmd.Process.Pid, port)
	go func() {
		err := cmd.Wait()
		stdout.flush()
		stderr.flush()
		p.err = err
		h.target.CompareAndSwap(p.target, nil)
		switch {
		case p.expected.Load():
			h.log.printf("handler exited (%s)", exitString(err))
		default:
			h.log.printf("handler exited unexpectedly (%s); requests are answered 502 until it is started again", exitString(err))
		}
		close(p.done)
	}()

	err = h.waitReady(ctx, p)
	if err == nil {
		h.target.Store(p.target)
		if isDone(p.done) { // it exited between the probe and now
			h.target.CompareAndSwap(p.target, nil)
			err = fmt.Errorf("the handler exited as it became ready (%s)", exitString(p.err))
		}
	}
	if err != nil {
		p.expected.Store(true)
		_ = cmd.Process.Kill()
		<-p.done
		h.mu.Lock()
		h.proc = nil
		h.mu.Unlock()
		return fmt.Errorf("devstack: %s: %w", h.cfg.Name, err)
	}
	h.log.printf("ready at %s, forwarding to 127.0.0.1:%d", h.url, port)
	if len(h.timers) > 0 {
		if h.cfg.TimersManual {
			h.log.printf("timer functions run only when invoked (TimersManual): %s", timerNames(h.timers))
		} else {
			run := h.startTimers()
			h.mu.Lock()
			h.timerRun = run
			h.mu.Unlock()
		}
	}
	return nil
}

// waitReady polls GET / until any answer, as the Functions host does.
func (h *Host) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	probe := p.target.String() + "/"
	wait := 5 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("the handler exited before it was ready (%s)", exitString(p.err))
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the handler did not answer GET / within %s", h.cfg.StartTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// Stop stops the handler as the host does: new requests are answered 502,
// the process gets SIGTERM and StopTimeout to exit, then SIGKILL. It
// returns an error if the handler had to be killed or exited with a failure,
// or had exited unexpectedly before. Stopping a stopped handler does nothing.
func (h *Host) Stop() error {
	h.op.Lock()
	defer h.op.Unlock()
	return h.stop(false)
}

// Kill kills the handler with SIGKILL and waits for it, as a crash would.
func (h *Host) Kill() error {
	h.op.Lock()
	defer h.op.Unlock()
	return h.stop(true)
}

func (h *Host) stop(kill bool) error {
	h.mu.Lock()
	p, run := h.proc, h.timerRun
	h.proc, h.timerRun = nil, nil
	h.mu.Unlock()
	// No timer fires once the handler is asked to stop; a run in flight
	// finishes first (unless kill), as the host drains its listeners.
	h.endTimers(run, kill)
	if p == nil {
		return nil
	}
	defer h.transport.CloseIdleConnections()
	if isDone(p.done) {
		if !p.expected.Load() {
			return fmt.Errorf("devstack: %s had exited unexpectedly (%s)", h.cfg.Name, exitString(p.err))
		}
		return nil
	}
	p.expected.Store(true)
	h.target.CompareAndSwap(p.target, nil)
	if kill {
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("devstack: kill %s: %w", h.cfg.Name, err)
		}
		<-p.done
		return nil
	}
	if err := terminate(p.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	t := time.NewTimer(h.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("devstack: %s exited after SIGTERM with %s", h.cfg.Name, exitString(p.err))
		}
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("devstack: %s did not exit within %s of SIGTERM and was killed", h.cfg.Name, h.cfg.StopTimeout)
	}
}

// Close stops the handler (as Stop) and then the public address. It is
// idempotent: later calls return nil.
func (h *Host) Close() error {
	h.op.Lock()
	defer h.op.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	err := h.stop(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := h.srv.Shutdown(ctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("devstack: %s: %w", h.cfg.Name, serr))
	}
	if serr := <-h.serveDone; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("devstack: %s: %w", h.cfg.Name, serr))
	}
	h.transport.CloseIdleConnections()
	return err
}

// ServeHTTP routes as the host does: declared routes to the handler,
// everything else answered here. Timer functions have no route: the
// handler's /<function> path is not reachable through the host.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	matched, allowed := h.match(r.Method, r.URL.Path)
	if len(matched) == 0 {
		problem.Error(w, http.StatusNotFound, "no function declares the route "+r.URL.Path)
		return
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
	if !allowed && !preflight {
		var methods []string
		for _, rt := range matched {
			methods = append(methods, rt.Methods...)
		}
		slices.Sort(methods)
		methods = slices.Compact(methods)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		problem.Error(w, http.StatusMethodNotAllowed, r.Method+" is not declared for "+r.URL.Path+"; declared: "+strings.Join(methods, ", "))
		return
	}
	target := h.target.Load()
	if target == nil {
		problem.Error(w, http.StatusBadGateway, "the "+h.cfg.Name+" handler is not running")
		return
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
}

// match returns the routes whose template matches path, and whether one
// of them declares method.
func (h *Host) match(method, path string) (matched []HTTPRoute, allowed bool) {
	segs := splitPath(path)
	for _, rt := range h.routes {
		if !rt.matches(segs) {
			continue
		}
		matched = append(matched, rt)
		if len(rt.Methods) == 0 || slices.Contains(rt.Methods, strings.ToUpper(method)) {
			allowed = true
		}
	}
	return matched, allowed
}

func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/") // ASP.NET routing ignores one trailing slash
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (rt HTTPRoute) matches(segs []string) bool {
	for i, s := range rt.segs {
		switch s.kind {
		case segCatchAll:
			return true
		case segOptional:
			return len(segs) == i || (len(segs) == i+1 && segs[i] != "")
		}
		if i >= len(segs) {
			return false
		}
		switch s.kind {
		case segLiteral:
			if !strings.EqualFold(s.literal, segs[i]) {
				return false
			}
		case segParam:
			if segs[i] == "" {
				return false
			}
		}
	}
	return len(segs) == len(rt.segs)
}

// RoutePrefix reads extensions.http.routePrefix from a host.json: "api"
// when it is not set, "" when it is set empty.
func RoutePrefix(hostJSON string) (string, error) {
	b, err := os.ReadFile(hostJSON)
	if err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	var doc struct {
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("devstack: %s: %w", hostJSON, err)
	}
	if doc.Extensions.HTTP.RoutePrefix == nil {
		return "api", nil
	}
	return strings.Trim(*doc.Extensions.HTTP.RoutePrefix, "/"), nil
}

// LoadRoutes reads the HTTP triggers of every <function>/function.json in
// appDir; prefix is the route prefix ("api"). A function's route defaults
// to its name, its methods to all. Disabled functions and functions without
// an httpTrigger are skipped.
func LoadRoutes(appDir, prefix string) ([]HTTPRoute, error) {
	fns, err := loadFunctions(appDir)
	if err != nil {
		return nil, err
	}
	var routes []HTTPRoute
	for _, fn := range fns {
		for _, b := range fn.Bindings {
			if !strings.EqualFold(b.Type, "httpTrigger") {
				continue
			}
			route := fn.name
			if b.Route != nil && strings.Trim(*b.Route, "/") != "" {
				route = strings.Trim(*b.Route, "/")
			}
			rt, err := parseRoute(fn.name, prefix, route)
			if err != nil {
				return nil, fmt.Errorf("devstack: %s: %w", fn.file, err)
			}
			for _, m := range b.Methods {
				rt.Methods = append(rt.Methods, strings.ToUpper(m))
			}
			routes = append(routes, rt)
		}
	}
	return routes, nil
}

// functionDoc is one function.json: the bindings of every kind the
// simulator reads.
type functionDoc struct {
	Disabled bool `json:"disabled"`
	Bindings []struct {
		Type         string   `json:"type"`
		Direction    string   `json:"direction"`
		Name         string   `json:"name"`
		Route        *string  `json:"route"`
		Methods      []string `json:"methods"`
		Schedule     string   `json:"schedule"`
		UseMonitor   *bool    `json:"useMonitor"`
		RunOnStartup bool     `json:"runOnStartup"`
	} `json:"bindings"`

	name, file string // the function's name (its folder) and its file
}

// loadFunctions reads every enabled <function>/function.json in appDir,
// in name order.
func loadFunctions(appDir string) ([]functionDoc, error) {
	files, err := filepath.Glob(filepath.Join(appDir, "*", "function.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []functionDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		var doc functionDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("devstack: %s: %w", f, err)
		}
		if doc.Disabled {
			continue
		}
		doc.name, doc.file = filepath.Base(filepath.Dir(f)), f
		out = append(out, doc)
	}
	return out, nil
}

func parseRoute(function, prefix, route string) (HTTPRoute, error) {
	full := route
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		full = prefix + "/" + route
	}
	rt := HTTPRoute{Function: function, Template: "/" + full}
	parts := strings.Split(full, "/")
	for i, s := range parts {
		last := i == len(parts)-1
		if !strings.ContainsAny(s, "{}") {
			if s == "" {
				return HTTPRoute{}, fmt.Errorf("route %q has an empty segment", route)
			}
			rt.segs = append(rt.segs, routeSeg{kind: segLiteral, literal: s})
			continue
		}
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
			return HTTPRoute{}, fmt.Errorf("route %q: segment %q mixes literals and parameters, which the host simulator does not support", route, s)
		}
		name := s[1 : len(s)-1]
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i] // constraints are not checked
		}
		seg := routeSeg{kind: segParam}
		switch {
		case strings.HasPrefix(name, "*"):
			seg.kind = segCatchAll
		case strings.HasSuffix(name, "?"):
			seg.kind = segOptional
		}
		if seg.kind != segParam && !last {
			return HTTPRoute{}, fmt.Errorf("route %q: %q must be the last segment", route, s)
		}
		if strings.Trim(name, "*?") == "" {
			return HTTPRoute{}, fmt.Errorf("route %q: parameter %q has no name", route, s)
		}
		rt.segs = append(rt.segs, seg)
	}
	return rt, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
