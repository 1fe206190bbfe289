package funchost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// process is one run of the handler.
type process struct {
	cmd      *exec.Cmd
	target   *url.URL
	done     chan struct{} // closed once it has exited and its output is flushed
	err      error         // its exit, valid once done is closed
	expected bool          // the exit was asked for (Stop, Kill, a failed start); guarded by Host.mu
	ready    bool          // it answered the readiness probe; guarded by Host.mu
}

// PID is the handler's process id, 0 when it is not running.
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil || isDone(h.proc.done) {
		return 0
	}
	return h.proc.cmd.Process.Pid
}

// Start starts the handler and waits until it answers GET / (at most
// StartTimeout, and no longer than ctx). On failure the process is killed.
// Starting a running handler is an error. From then on the host restarts
// the handler as the Functions host does (see [Host.watch]), until Stop,
// Kill or Close.
func (h *Host) Start(ctx context.Context) error {
	h.op.Lock()
	defer h.op.Unlock()
	h.mu.Lock()
	closed, running := h.closed, h.proc != nil && !isDone(h.proc.done)
	if !closed && !running {
		h.want, h.errExits = true, nil
	}
	h.mu.Unlock()
	if closed {
		return fmt.Errorf("funchost: %s: the host is closed", h.cfg.Name)
	}
	if running {
		return fmt.Errorf("funchost: %s is already running", h.cfg.Name)
	}
	if err := h.launch(ctx, nil); err != nil {
		h.setDown(false, "the "+h.cfg.Name+" handler failed to start")
		return fmt.Errorf("funchost: %s: %w", h.cfg.Name, err)
	}
	return nil
}

// launch starts a worker and waits until it is ready; requests arriving
// meanwhile are held (awaitWorker) on starting (nil: a new one). The caller
// holds h.op.
func (h *Host) launch(ctx context.Context, starting chan struct{}) error {
	if starting == nil {
		starting = make(chan struct{})
	}
	h.mu.Lock()
	stale := h.timerRun
	h.timerRun, h.starting = nil, starting
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.starting == starting {
			h.starting = nil
		}
		h.mu.Unlock()
		close(starting)
	}()
	// The timers of a crashed worker still run: end them.
	h.endTimers(stale, true)
	p, err := h.spawn()
	if err != nil {
		return err
	}
	err = h.waitReady(ctx, p)
	if err == nil {
		h.mu.Lock()
		p.ready = true
		h.mu.Unlock()
		h.target.Store(p.target)
		if isDone(p.done) { // it exited between the probe and now
			h.target.CompareAndSwap(p.target, nil)
			err = fmt.Errorf("the handler exited as it became ready (%s)", exitString(p.err))
		}
	}
	if err != nil {
		h.mu.Lock()
		p.expected = true
		h.proc = nil
		h.mu.Unlock()
		_ = p.cmd.Process.Kill()
		<-p.done
		return err
	}
	h.log.printf("ready at %s, forwarding to %s", h.url, p.target.Host)
	h.scheduleTimers()
	return nil
}

// spawn starts the handler process with the environment the host passes
// (HttpWorkerProcess.cs:48-63: its whole environment, through
// DefaultWorkerProcessFactory.cs:54-60, plus the port, the worker id and
// the app's root) and watches its exit.
func (h *Host) spawn() (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h.cfg.Command)
	cmd.Dir = h.cfg.AppDir
	cmd.Env = workerEnv(h.cfg.Env, port, invocationID(), h.cfg.AppDir)
	stdout := newLineWriter(h.cfg.Output, "["+h.cfg.Name+"] ")
	stderr := newLineWriter(h.cfg.Output, "["+h.cfg.Name+" error] ")
	stderr.warnPrefix = "[" + h.cfg.Name + " warning] "
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second // stop copying output if a grandchild holds the pipes
	if err := startProcess(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(h.cfg.Command), err)
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
		h.mu.Lock()
		asked := p.expected || h.proc != p || !h.want || !p.ready // !ready: launch reports it
		h.mu.Unlock()
		if asked { // logged before Stop returns
			h.log.printf("handler exited (%s)", exitString(err))
		}
		close(p.done)
		if !asked {
			h.watch(p)
		}
	}()
	return p, nil
}

// workerEnv is the worker's environment: env, then the host's own
// variables, which win.
func workerEnv(env map[string]string, port int, workerID, appDir string) []string {
	added := map[string]string{
		EnvCustomHandlerPort:     strconv.Itoa(port),
		EnvHTTPWorkerPort:        strconv.Itoa(port),
		EnvCustomHandlerWorkerID: workerID,
		EnvHTTPWorkerID:          workerID,
		EnvAppRootPath:           appDir,
	}
	var out []string
	for k, v := range env {
		if _, ok := added[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range added {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// maxProbeBody bounds what is read of the readiness probe's answer.
const maxProbeBody = 64 << 10

// waitReady polls GET / until any answer, as the Functions host does
// (DefaultHttpWorkerService.IsWorkerReady, :263), and with the client that
// forwards the requests, as it does (SendPingRequestAsync sends the ping
// through the same _httpClient as SendInvocationRequestAsync): the probe's
// connection stays open, and the first request reuses it.
func (h *Host) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	defer cancel()
	client := &http.Client{Transport: h.transport, Timeout: 2 * time.Second}
	probe := p.target.String() + "/"
	wait := 5 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			// Read to the end (at most maxProbeBody), so the connection
			// goes back to the pool.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
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

// watch decides, once p has exited, what the host does, as
// WorkerProcess.OnProcessExited (WorkerProcess.cs:156-196) and
// HttpFunctionInvocationDispatcher (HttpFunctionInvocationDispatcher.cs:106-173)
// do: exit 0 is left alone (no restart: the app stays down); exit 200
// restarts without counting; any other exit is an error: restarted, unless
// it is the ErrorExitThreshold-th within ErrorExitWindow of the previous
// one, which stops the host.
func (h *Host) watch(p *process) {
	code := p.cmd.ProcessState.ExitCode() // -1 when killed by a signal: an error
	switch {
	case code == 0:
		h.setDown(false, "the "+h.cfg.Name+" handler exited with status 0; the host does not restart it")
		h.log.printf("handler exited with status 0: the host does not restart it (as in Azure, the app stays down until it is started again)")
		return
	case code == IntentionalRestartExitCode:
		h.log.printf("handler exited with status %d: restarting it", code)
	default:
		if n := h.countErrorExit(); n >= ErrorExitThreshold {
			h.setDown(false, fmt.Sprintf("the %s host stopped: the handler exited with an error %d times", h.cfg.Name, n))
			h.log.printf("handler exited unexpectedly (%s): error exit %d within %s of the previous one: exceeded the restart retry count, the host stops", exitString(p.err), n, ErrorExitWindow)
			h.stopTimersAfterCrash()
			return
		}
		h.log.printf("handler exited unexpectedly (%s): restarting it; requests wait meanwhile", exitString(p.err))
	}
	h.restart(p)
}

// countErrorExit records an error exit and returns how many count.
func (h *Host) countErrorExit() int {
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.errExits); n > 0 && now.Sub(h.errExits[n-1]) > ErrorExitWindow {
		h.errExits = nil
	}
	h.errExits = append(h.errExits, now)
	return len(h.errExits)
}

// restart starts a new worker in place of p (nil: after a failed
// restart), unless a Stop, Kill, Close or Start came first. Requests are
// held from the moment the exit is seen.
func (h *Host) restart(p *process) {
	pending := make(chan struct{})
	h.mu.Lock()
	h.starting = pending
	h.mu.Unlock()
	h.op.Lock()
	defer h.op.Unlock()
	h.mu.Lock()
	current := h.proc == p && h.want && !h.closed
	if !current && h.starting == pending {
		h.starting = nil
	}
	h.mu.Unlock()
	if !current {
		close(pending)
		return
	}
	err := h.launch(context.Background(), pending)
	if err == nil {
		return
	}
	// A worker that fails to start is an error exit too.
	n := h.countErrorExit()
	if n >= ErrorExitThreshold {
		h.setDown(false, fmt.Sprintf("the %s host stopped: the handler failed to restart (%v)", h.cfg.Name, err))
		h.log.printf("restart failed (%v): error %d: exceeded the restart retry count, the host stops", err, n)
		return
	}
	h.log.printf("restart failed (%v): restarting again", err)
	go h.restart(nil)
}

// setDown records why no worker runs; want false stops restarts.
func (h *Host) setDown(want bool, why string) {
	h.mu.Lock()
	h.want, h.down = want, why
	h.mu.Unlock()
}

// stopTimersAfterCrash ends the timers of a host that gave up.
func (h *Host) stopTimersAfterCrash() {
	h.mu.Lock()
	run := h.timerRun
	h.timerRun = nil
	h.mu.Unlock()
	go h.endTimers(run, true)
}

// Stop stops the handler as the host does: no timer fires any more (a run
// in flight gets StopTimeout to finish), then the process is killed with
// SIGKILL (WorkerProcess.Dispose, WorkerProcess.cs:254-275: the host never
// asks a worker to stop gracefully). Requests are answered 502 until
// Start. It returns an error if the handler had exited unexpectedly before.
// Stopping a stopped handler does nothing.
func (h *Host) Stop() error {
	h.op.Lock()
	defer h.op.Unlock()
	return h.stop(false)
}

// Kill kills the handler with SIGKILL at once, timer runs in flight
// included, and waits for it, as a crash of the whole instance would; the
// host does not restart it.
func (h *Host) Kill() error {
	h.op.Lock()
	defer h.op.Unlock()
	return h.stop(true)
}

func (h *Host) stop(abort bool) error {
	h.mu.Lock()
	p, run := h.proc, h.timerRun
	h.proc, h.timerRun, h.want = nil, nil, false
	h.down = "the " + h.cfg.Name + " handler is not running"
	// A restart waiting to run will not: requests held for it stop waiting.
	h.starting = nil
	close(h.abandon)
	h.abandon = make(chan struct{})
	if p != nil {
		p.expected = true
	}
	h.mu.Unlock()
	h.endTimers(run, abort)
	if p == nil {
		return nil
	}
	defer h.transport.CloseIdleConnections()
	h.target.CompareAndSwap(p.target, nil)
	if isDone(p.done) {
		if p.err != nil {
			return fmt.Errorf("funchost: %s had exited (%s)", h.cfg.Name, exitString(p.err))
		}
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("funchost: kill %s: %w", h.cfg.Name, err)
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		h.log.printf("the handler has not exited %s after SIGKILL; still waiting", killWait)
		<-p.done
	}
	return nil
}

// shutdownTimeout bounds Close's wait for the public address's requests to
// end. It is longer than the 5 s after which net/http counts a connection
// that never sent a request (a client's spare connection, a browser's
// preconnect) as idle: such a connection delays Close, never fails it.
const shutdownTimeout = 10 * time.Second

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
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := h.srv.Shutdown(ctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("funchost: %s: %w", h.cfg.Name, serr))
	}
	if serr := <-h.serveDone; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("funchost: %s: %w", h.cfg.Name, serr))
	}
	h.transport.CloseIdleConnections()
	return err
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
