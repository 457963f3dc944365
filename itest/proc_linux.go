package itest

import "syscall"

// childAttr puts a child in its own process group (so a stop reaches what
// it started) and kills it when the test or tool that started it dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
