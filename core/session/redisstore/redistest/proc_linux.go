package redistest

import "syscall"

// sysProcAttr has the kernel kill a server when the test binary dies
// without running its cleanups (a -timeout panic, a SIGKILL), so no
// redis-server outlives the tests. (The kernel ties this to the thread
// that started the child; Go ends a thread only when a goroutine locked
// to it exits, which these tests do not do.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
