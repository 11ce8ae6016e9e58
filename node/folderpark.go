package node

import (
	"time"

	"github.com/meshwork/meshwork/syncproto"
)

// Backoff of the retries of parked items (content no online member had).
const (
	parkFirst = 2 * time.Second
	parkMax   = time.Minute
)

// requeue marks items pending again after an Apply failed for a passing
// reason; items refused for good (unsafe or colliding paths, listed in
// Skipped) are not retried.
func (lf *localFolder) requeue(items []syncproto.Item) {
	refused := lf.f.Status().Skipped
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for _, it := range items {
		fe, _ := it.Body.(*syncproto.FileEntry)
		if refused[string(it.Sync.ID)] != "" || (fe != nil && refused[fe.Path] != "") {
			continue
		}
		lf.pending[it.Sync.ID] = true
	}
}

// park sets aside the items of an Apply whose content no peer could
// provide (every other item of it was written) and returns when to retry
// them, doubling at each retry that finds them still unavailable (0: none
// parked).
func (lf *localFolder) park(items []syncproto.Item) time.Duration {
	unav := lf.f.UnavailableItems()
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.parked == nil {
		lf.parked = map[syncproto.ItemID]bool{}
	}
	for _, it := range items {
		if unav[it.Sync.ID] {
			lf.parked[it.Sync.ID] = true
		}
	}
	if len(lf.parked) == 0 {
		for _, it := range items { // not told which failed: retry them all
			lf.parked[it.Sync.ID] = true
		}
	}
	if len(lf.parked) == 0 {
		return 0
	}
	lf.parkWait = min(max(2*lf.parkWait, parkFirst), parkMax)
	return lf.parkWait
}

// unpark queues the parked items again, and those the folder found
// unavailable; now (a member came online, a wait) also restarts their
// backoff.
func (lf *localFolder) unpark(now bool) {
	// Also what an Apply of the folder's own (its start, its rescans)
	// found unavailable: it is not parked here.
	unav := lf.f.UnavailableItems()
	lf.mu.Lock()
	if now {
		lf.parkWait = 0
	}
	for id := range lf.parked {
		lf.pending[id] = true
	}
	for id := range unav {
		lf.pending[id] = true
	}
	none := len(lf.parked) == 0 && len(unav) == 0
	lf.mu.Unlock()
	if none {
		return
	}
	select {
	case lf.kick <- struct{}{}:
	default:
	}
}

// hasParked reports whether some item waits for content no online member
// had (parked here, or found unavailable by an Apply of the folder's own).
func (lf *localFolder) hasParked() bool {
	if len(lf.f.UnavailableItems()) > 0 {
		return true
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return len(lf.parked) > 0
}
