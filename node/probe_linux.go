package node

import (
	"fmt"
	"syscall"

	"github.com/dustin/go-humanize"
)

// storeMinFree is the free space below which the store counts as full: a
// memtable flush writes a table of up to the memtable's size.
const storeMinFree = 1 << 20

// probe checks the store directory without writing to it (the status API
// calls it, through check, up to once a second): it still exists, is the
// directory badger opened (not one made again at its path), is writable (a
// read-only mount fails even for root) and has space left.
func (h *storeHealth) probe() error {
	var st syscall.Stat_t
	if err := syscall.Stat(h.dir, &st); err != nil {
		return err
	}
	switch {
	case h.ino == 0:
		h.ino = st.Ino
	case h.ino != st.Ino:
		return fmt.Errorf("the directory was removed and made again (inode %d, was %d): badger's files are gone", st.Ino, h.ino)
	}
	if err := syscall.Access(h.dir, 2 /* W_OK */); err != nil {
		return err
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(h.dir, &fs); err != nil {
		return err
	}
	if free := fs.Bavail * uint64(fs.Bsize); free < storeMinFree {
		return fmt.Errorf("%w: %s free", syscall.ENOSPC, humanize.IBytes(free))
	}
	return nil
}
