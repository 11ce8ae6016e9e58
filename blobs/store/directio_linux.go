package store

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const oDirect = syscall.O_DIRECT

// setMtime sets f's modification time (and its access time to the same)
// through the descriptor.
func setMtime(f *os.File, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(int(f.Fd()), "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH); err == nil {
		return nil
	}
	return os.Chtimes(f.Name(), t, t) // kernels without AT_EMPTY_PATH here

}
