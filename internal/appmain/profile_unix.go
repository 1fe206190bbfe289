//go:build unix

package appmain

import (
	"os"
	"syscall"
)

// profileSignals stop the CPU profile and write it (see EnvCPUProfile).
var profileSignals = []os.Signal{syscall.SIGUSR1}
