package azuritetest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts Azurite in a process group of its own (so that kill
// reaches node and its children), killed too if the test binary dies
// without cleaning up (a test timeout's panic, say).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
