package funchost

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr puts the handler in its own process group, so a Ctrl-C in the
// terminal reaches devstack alone and the handlers are stopped in order
// rather than all at once; and asks Linux to
// SIGKILL it if this process dies without stopping it (devstack killed with
// SIGKILL, a test binary killed by its timeout), so no handler outlives its
// host. SIGKILL, not SIGTERM: nobody is left to wait for a graceful stop,
// and a handler must not be able to ignore it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// spawner starts every handler from one goroutine locked to its OS thread
// for the life of the process. Linux sends the death signal when the
// thread that forked the child exits, not the process; the Go runtime ends
// a thread when a goroutine locked to it exits, which any code in the
// process may do. This thread never ends before the process.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd on the spawner's thread.
func startProcess(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
