//go:build !unix

package azuritetest

import "os/exec"

func setProcAttr(*exec.Cmd) {}

func kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
