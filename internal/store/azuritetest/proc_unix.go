//go:build unix

package azuritetest

import (
	"os/exec"
	"syscall"
)

// kill kills Azurite's process group: the node process and any child.
func kill(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
