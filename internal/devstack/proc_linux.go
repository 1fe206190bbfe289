package devstack

import (
	"os"
	"syscall"
)

// sysProcAttr puts the handler in its own process group, so a Ctrl-C in the
// terminal reaches devstack alone and the handlers are stopped in order
// (SIGTERM, then SIGKILL) rather than all at once; and asks Linux to send
// it SIGTERM if this process dies without stopping it (a test binary
// killed by its timeout, say), so no handler outlives its host. (The death
// signal is tied to the thread that started the child; Go retires threads
// only when a goroutine exits locked to one, which nothing here does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
