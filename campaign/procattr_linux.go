package campaign

import "syscall"

// procAttr makes a kapseld subprocess die with the test binary (SIGKILL when
// its parent goes), so that even a test killed from outside leaves no
// kapseld behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
