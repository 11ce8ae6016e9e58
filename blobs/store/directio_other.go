//go:build !linux

package store

import (
	"os"
	"time"
)

const oDirect = 0

// setMtime sets f's modification time (by path: no descriptor call here).
func setMtime(f *os.File, t time.Time) error { return os.Chtimes(f.Name(), t, t) }
