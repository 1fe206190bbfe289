//go:build unix && !linux

package funchost

import "syscall"

// sysProcAttr puts the handler in its own process group, so a Ctrl-C in the
// terminal reaches devstack alone and the handlers are stopped in order.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
