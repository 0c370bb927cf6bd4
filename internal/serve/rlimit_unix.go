//go:build unix

package serve

import "syscall"

// openFileLimit is the process's soft RLIMIT_NOFILE (which the Go runtime
// raises to the hard limit at start-up).
func openFileLimit() (uint64, bool) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0, false
	}
	return uint64(l.Cur), true
}
