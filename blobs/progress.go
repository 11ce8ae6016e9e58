package blobs

import "time"

// Progress is a snapshot of a transfer or materialisation, for a progress bar
// or an API. Bytes already present locally count as done from the start.
type Progress struct {
	Blob        BlobRef
	DoneBytes   int64
	TotalBytes  int64
	DoneChunks  int // distinct chunks
	TotalChunks int
	Rate        float64       // bytes per second fetched, smoothed over about a second
	Elapsed     time.Duration // since the operation started
	Peers       int           // peers still serving this transfer
}

// Fraction returns DoneBytes/TotalBytes, 1 for an empty blob.
func (p Progress) Fraction() float64 {
	if p.TotalBytes == 0 {
		return 1
	}
	return float64(p.DoneBytes) / float64(p.TotalBytes)
}
