package node

import (
	"math"
	"testing"
	"time"

	"github.com/meshwork/meshwork/node/folder"
)

func TestRateTracker(t *testing.T) {
	var tr rateTracker
	t0 := time.Unix(1_000_000, 0)
	if r := tr.observe(t0, 0); r != 0 {
		t.Fatalf("rate from one sample = %v, want 0", r)
	}
	// 1 MB/s for 30 s, asked every 100 ms: the rate is 1 MB/s, and the
	// samples stay few (at most one per rateMinGap over about rateWindow).
	var r float64
	for i := 1; i <= 300; i++ {
		r = tr.observe(t0.Add(time.Duration(i)*100*time.Millisecond), int64(i)*100_000)
	}
	if math.Abs(r-1e6) > 1 {
		t.Fatalf("rate = %v, want 1e6", r)
	}
	if n, max := len(tr.samples), int(rateWindow/rateMinGap)+2; n > max {
		t.Fatalf("%d samples kept, want at most %d", n, max)
	}
	// The rate follows a change within a window: 3 MB/s from 30 s on.
	now := t0.Add(30 * time.Second)
	bytes := int64(30_000_000)
	for i := 0; i < 130; i++ {
		now = now.Add(100 * time.Millisecond)
		bytes += 300_000
		r = tr.observe(now, bytes)
	}
	if math.Abs(r-3e6) > 1e3 {
		t.Fatalf("rate after 13 s at 3 MB/s = %v, want 3e6", r)
	}
	// Stalled: the rate falls to 0 once the window holds no progress.
	for i := 0; i < 120; i++ {
		now = now.Add(100 * time.Millisecond)
		r = tr.observe(now, bytes)
	}
	if r != 0 {
		t.Fatalf("rate after 12 s stalled = %v, want 0", r)
	}
	// A long gap between askings says nothing about now.
	now = now.Add(10 * time.Minute)
	if r = tr.observe(now, bytes+1e9); r != 0 {
		t.Fatalf("rate after a 10 min gap = %v, want 0 (unknown)", r)
	}
	// Fewer bytes than before (a file deleted): afresh, never negative.
	if r = tr.observe(now.Add(time.Second), 5); r != 0 {
		t.Fatalf("rate after a decrease = %v, want 0", r)
	}
}

func TestProgressOf(t *testing.T) {
	var tr rateTracker
	t0 := time.Unix(1_000_000, 0)
	st := folder.Status{NeedFiles: 10, SyncedFiles: 4, NeedBytes: 1000, LocalBytes: 400,
		Transferring: []folder.Transfer{{Path: "a", Done: 50, Total: 100}}}
	p := progressOf(st, &tr, t0)
	if p.FilesDone != 4 || p.FilesTotal != 10 || p.BytesDone != 450 || p.BytesTotal != 1000 || p.Rate != 0 || p.ETASeconds != 0 {
		t.Fatalf("first progress = %+v", p)
	}
	st.LocalBytes, st.Transferring = 500, nil
	p = progressOf(st, &tr, t0.Add(time.Second))
	if p.BytesDone != 500 || p.Rate != 50 || p.ETASeconds != 10 {
		t.Fatalf("second progress = %+v, want 500 done at 50 B/s, 10 s left", p)
	}
	// Transfers never count beyond the total (a file replaced meanwhile).
	st.LocalBytes, st.Transferring = 1000, []folder.Transfer{{Path: "b", Done: 70, Total: 70}}
	p = progressOf(st, &tr, t0.Add(2*time.Second))
	if p.BytesDone != 1000 || p.ETASeconds != 0 {
		t.Fatalf("done progress = %+v, want 1000 of 1000, no ETA", p)
	}
}
