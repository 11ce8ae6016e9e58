package transfer

// Watching a fetch: the stall checks and the progress reports.

import (
	"context"
	"fmt"
	"time"

	"github.com/meshwork/meshwork/blobs"
)

// watch waits for the fetch to finish or ctx to end, dropping every
// stalled peer on the way (stalled).
func (f *fetch) watch(ctx context.Context) {
	every := max(f.s.stallTimeout/4, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-f.finished:
			return
		case <-ctx.Done():
			return
		case now := <-tick.C:
			f.mu.Lock()
			if idle := f.idle(now); idle > f.s.stallTimeout && !f.ended {
				// A backstop for a fetch whose state owes nothing and
				// waits for nothing (no peer counts as stalled, yet no
				// chunk comes): end it, so the caller tries again.
				f.s.c.peersStalled.Add(1)
				f.finish(fmt.Errorf("no progress for %v with %d chunks left: %w (%w)", idle.Round(time.Millisecond), f.remaining, ErrStalled, ErrUnavailable))
			}
			for _, p := range f.peers {
				if !p.dead && !f.ended {
					if idle := f.stalled(p, now); idle > 0 {
						f.s.c.peersStalled.Add(1)
						f.kill(p, fmt.Errorf("no answer for %v with %d requests in flight: %w", idle.Round(time.Millisecond), len(p.inflight)+p.haveLeft, ErrStalled))
					}
				}
			}
			f.mu.Unlock()
		}
	}
}

// idle is how long the whole fetch has gone without progress: no chunk
// stored, no answer read, no byte from any peer. Called with mu held.
func (f *fetch) idle(now time.Time) time.Duration {
	last := f.progressAt
	for _, p := range f.peers {
		if p.read != nil {
			if at := p.read.at(); at.After(last) {
				last = at
			}
		}
	}
	return now.Sub(last)
}

// stalled returns how long p has owed an answer without sending a byte,
// when that exceeds the service's stall timeout (else 0). A peer owes an
// answer while it has requests in flight or HAVE batches unanswered; the
// wait counts from the last byte read from it, or from the oldest
// pending request if that is later. A peer that keeps its connection up
// and accepts requests but never answers (frozen, or hostile) would
// otherwise hold the fetch, and the caller's transfer slot, for good; its
// chunks go back to the other peers. Called with mu held.
func (f *fetch) stalled(p *peerState, now time.Time) time.Duration {
	if p.read == nil || (len(p.inflight) == 0 && p.haveLeft == 0) {
		return 0
	}
	since := p.read.at()
	if p.haveLeft > 0 && p.started.After(since) {
		since = p.started
	}
	if p.haveLeft == 0 {
		oldest := now
		for _, r := range p.inflight {
			if r.sentAt.Before(oldest) {
				oldest = r.sentAt
			}
		}
		if oldest.After(since) {
			since = oldest
		}
	}
	if idle := now.Sub(since); idle > f.s.stallTimeout {
		return idle
	}
	return 0
}

// finish ends the fetch (with err, or nil on success). Called with mu held.
func (f *fetch) finish(err error) {
	if f.ended {
		return
	}
	f.ended = true
	f.err = err
	close(f.finished)
}

// report calls the progress callback (throttled unless final).
func (f *fetch) report(final bool) {
	if f.progress == nil {
		return
	}
	f.pmu.Lock()
	defer f.pmu.Unlock()
	now := time.Now()
	if !final && now.Sub(f.lastRep) < progressEvery {
		return
	}
	f.mu.Lock()
	pr := blobs.Progress{
		Blob:        f.blob,
		DoneBytes:   f.doneBytes,
		TotalBytes:  f.blob.Size,
		TotalChunks: f.present + len(f.chunks),
		DoneChunks:  f.present + len(f.chunks) - f.remaining,
		Elapsed:     now.Sub(f.start),
	}
	for _, p := range f.peers {
		if !p.dead {
			pr.Peers++
		}
	}
	fetched := f.fetched
	f.mu.Unlock()
	last := f.lastRep
	if last.IsZero() {
		last = f.start
	}
	if dt := now.Sub(last).Seconds(); dt > 0 {
		inst := float64(fetched-f.lastBytes) / dt
		if f.rate == 0 {
			f.rate = inst
		} else {
			f.rate = 0.5*f.rate + 0.5*inst
		}
	}
	pr.Rate = f.rate
	f.lastRep, f.lastBytes = now, fetched
	f.progress(pr)
}
