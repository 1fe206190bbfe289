//go:build !unix

package devstack

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate kills: there is no SIGTERM to send.
func terminate(p *os.Process) error { return p.Kill() }
