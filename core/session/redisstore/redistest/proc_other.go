//go:build !linux

package redistest

import "syscall"

// sysProcAttr is nil where the kernel cannot kill a child with its parent:
// t.Cleanup still stops every server, unless the test binary itself dies.
func sysProcAttr() *syscall.SysProcAttr { return nil }
