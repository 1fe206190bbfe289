//go:build unix && !linux

package devstack

import (
	"os"
	"syscall"
)

// sysProcAttr puts the handler in its own process group, so a Ctrl-C in the
// terminal reaches devstack alone and the handlers are stopped in order.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
