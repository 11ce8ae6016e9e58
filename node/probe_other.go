//go:build !linux

package node

import (
	"errors"
	"os"
)

// probe creates a one-byte file in the store directory and removes it, as
// a memtable flush must be able to.
func (h *storeHealth) probe() error {
	f, err := os.CreateTemp(h.dir, ".meshd-probe-*")
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte{0})
	return errors.Join(werr, f.Close(), os.Remove(f.Name()))
}
