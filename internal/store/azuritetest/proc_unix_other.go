//go:build unix && !linux

package azuritetest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts Azurite in a process group of its own, so that kill
// reaches node and its children.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
