package main

// GOMAXPROCS is process-wide state the operator sets through the
// environment, so meshd's main decides it, not package node: a library
// embedded in another program (or the in-process test mesh) must not
// change its host's scheduler.

import (
	"os"
	"runtime"
)

// minProcs is the fewest Go processors (GOMAXPROCS) meshd runs with.
//
// A device syncing a folder spends much of its time in blocking file system
// calls: an fsync per received file, O_DIRECT writes of large chunks,
// renames. A thread in such a call keeps its processor until the runtime's
// monitor takes it back, and meanwhile runnable goroutines wait. With one
// processor per core, on a 2-core machine, a receiver of 10,000 small files
// left both cores idle a fifth of the time while goroutines waited to run;
// with 4 or more processors the idle time fell to 5–13%, and the small files
// took 8% less time and the whole photo library of the initial-sync
// benchmark 13% less (4, 8 and 16 were within noise of each other).
// CPU-bound work is not slowed: the kernel still schedules the threads over
// the real cores.
const minProcs = 8

// raiseProcs sets GOMAXPROCS to at least minProcs and returns the value in
// effect. It does nothing when the GOMAXPROCS environment variable is set:
// the operator's choice wins.
func raiseProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	if n := runtime.GOMAXPROCS(0); n >= minProcs {
		return n
	}
	runtime.GOMAXPROCS(minProcs)
	return minProcs
}
