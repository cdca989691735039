//go:build !linux

package campaign

import "syscall"

// procAttr: outside Linux there is no parent-death signal; t.Cleanup kills
// the subprocesses.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
