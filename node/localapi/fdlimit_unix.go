//go:build unix

package localapi

import "syscall"

// fdLimit is the process's soft RLIMIT_NOFILE (Go raised it to the hard
// limit at start), 0 when unknown.
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
