package folder

// Indexing reports whether the folder may hold local changes it has not
// reported to its Feed yet: the first full scan has not completed (with
// Run: and its directories are not all watched and scanned again), a scan
// is running or waiting to run, or the watcher saw changes that no scan
// has covered yet (a full scan covers every event sent before it began).
// A file written before Indexing returns false is in the Feed, except
// when the watcher's event for it is still in the kernel's queue; Scan,
// which waits for a running scan and then looks at the whole tree, has no
// such window ('mesh folder wait' uses it).
func (f *Folder) Indexing() bool {
	return !f.firstReady.Load() || f.scans.Load() > 0 || f.evSent.Load() > f.evCovered.Load()
}

// cover records that scans have covered the watcher's events up to n.
func (f *Folder) cover(n uint64) {
	for {
		c := f.evCovered.Load()
		if n <= c || f.evCovered.CompareAndSwap(c, n) {
			return
		}
	}
}
