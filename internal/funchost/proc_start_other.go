//go:build !linux

package funchost

import "os/exec"

// startProcess starts cmd. Outside Linux there is no parent-death signal: a
// handler outlives a devstack killed with SIGKILL (a documented limit; a
// clean stop, SIGINT or SIGTERM, stops every handler).
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
