package node

import (
	"sync"
	"time"

	"github.com/meshwork/meshwork/node/folder"
)

// Progress is how far this device's copy of a folder is, in the figures a
// person reads: files and bytes done of what this copy must hold, the rate
// and the time left. It is part of FolderInfo, so GET /v1/folders, mesh
// status --json and the events stream's folder events all carry it.
type Progress struct {
	FilesDone  int   `json:"files_done"` // regular files (directories and links are not counted)
	FilesTotal int   `json:"files_total"`
	BytesDone  int64 `json:"bytes_done"` // committed files, and what in-flight transfers hold already
	BytesTotal int64 `json:"bytes_total"`
	// Rate is bytes per second over the last rateWindow (0: idle, or not
	// yet known); ETASeconds is the time left at that rate, absent when
	// nothing is left or the rate is not known.
	Rate       float64 `json:"rate"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

const (
	rateWindow = 10 * time.Second // the rate is the progress over about this long
	rateMinGap = 500 * time.Millisecond
	rateSpan   = 4 * rateWindow // samples older than this say nothing about now
)

// progressSample is one observation of a folder's bytes done.
type progressSample struct {
	at    time.Time
	bytes int64
}

// rateTracker turns the bytes-done figures it is shown into a rate. It
// keeps a few samples (at most one per rateMinGap, none older than
// rateSpan), so that its memory is bounded whoever asks and how often.
// Nothing samples in the background: the figures are as fresh as the
// asking (the events stream asks once a second while a folder syncs).
type rateTracker struct {
	mu      sync.Mutex
	samples []progressSample // oldest first
}

// observe records bytes done at now and returns the rate in bytes per
// second over the last rateWindow (from the newest sample at least
// rateWindow old, or else the oldest one), or 0 without two samples. A
// decrease (a file deleted, the folder rescanned) starts afresh.
func (t *rateTracker) observe(now time.Time, bytes int64) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.samples); n > 0 && bytes < t.samples[n-1].bytes {
		t.samples = t.samples[:0]
	}
	// Drop what is too old to mean anything, keeping one sample at least
	// rateWindow old as the base.
	for len(t.samples) > 1 && (now.Sub(t.samples[0].at) > rateSpan || now.Sub(t.samples[1].at) >= rateWindow) {
		t.samples = t.samples[1:]
	}
	if len(t.samples) == 1 && now.Sub(t.samples[0].at) > rateSpan {
		t.samples = t.samples[:0]
	}
	if n := len(t.samples); n == 0 || now.Sub(t.samples[n-1].at) >= rateMinGap {
		t.samples = append(t.samples, progressSample{at: now, bytes: bytes})
	}
	if len(t.samples) < 2 {
		return 0
	}
	base := t.samples[0]
	dt := now.Sub(base.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(bytes-base.bytes) / dt
}

// progressOf is the progress of a folder with status st, its rate from tr.
func progressOf(st folder.Status, tr *rateTracker, now time.Time) Progress {
	p := Progress{FilesDone: st.SyncedFiles, FilesTotal: st.NeedFiles, BytesDone: st.LocalBytes, BytesTotal: st.NeedBytes}
	for _, t := range st.Transferring {
		p.BytesDone += t.Done
	}
	p.BytesDone = min(p.BytesDone, p.BytesTotal)
	p.Rate = tr.observe(now, p.BytesDone)
	if left := p.BytesTotal - p.BytesDone; left > 0 && p.Rate > 0 {
		p.ETASeconds = float64(left) / p.Rate
	}
	return p
}
