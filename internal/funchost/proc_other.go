//go:build !unix

package funchost

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
