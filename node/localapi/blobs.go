package localapi

// Blobs through the control socket:
//
//	POST /v1/blobs/add {"paths": [...]} → [{"path","ref","error"}]
//	POST /v1/blobs/get {"refs": [...], "out": DIR}
//	     → NDJSON stream of node.BlobEvent, ending with one whose "done" is
//	     true. Blobs are written to DIR/<ref> (several fetched at once).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/node"
)

// blobCore is what the blob handlers ask of the core.
type blobCore interface {
	BlobAdd(ctx context.Context, path string) ([]store.AddResult, error)
	BlobGet(ctx context.Context, ref blobs.BlobRef, target string, progress func(blobs.Progress)) error
}

type blobAPI struct{ c blobCore }

func (a *blobAPI) add(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Paths []string `json:"paths"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	type res struct {
		Path  string `json:"path"`
		Ref   string `json:"ref,omitempty"`
		Error string `json:"error,omitempty"`
	}
	var out []res
	for _, p := range req.Paths {
		results, err := a.c.BlobAdd(r.Context(), p)
		if err != nil {
			out = append(out, res{Path: p, Error: err.Error()})
			continue
		}
		for _, x := range results {
			e := res{Path: x.Path, Ref: x.Ref.String()}
			if x.Err != nil {
				e.Ref, e.Error = "", x.Err.Error()
			}
			out = append(out, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

const blobGetParallel = 4

func (a *blobAPI) get(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Refs []string `json:"refs"`
		Out  string   `json:"out"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	refs := make([]blobs.BlobRef, len(req.Refs))
	var total int64
	for i, s := range req.Refs {
		ref, err := blobs.ParseBlobRef(s)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("blob %q: %w", s, err))
			return
		}
		refs[i] = ref
		total += ref.Size
	}
	if fi, err := os.Stat(req.Out); err != nil || !fi.IsDir() {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("output directory %q does not exist", req.Out))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	p := &blobProgress{enc: json.NewEncoder(w), done: map[string]int64{}, start: time.Now(), total: total}
	p.flusher, _ = w.(http.Flusher)
	sem := make(chan struct{}, blobGetParallel)
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func(ref blobs.BlobRef) {
			defer wg.Done()
			defer func() { <-sem }()
			err := a.c.BlobGet(r.Context(), ref, filepath.Join(req.Out, ref.String()), func(pr blobs.Progress) { p.progress(ref, pr) })
			p.finished(ref, err)
		}(ref)
	}
	wg.Wait()
	p.end()
}

// blobProgress is the NDJSON answer of a blob get: progress at most every
// 200 ms, an event per failed blob, and the final one.
type blobProgress struct {
	mu       sync.Mutex
	enc      *json.Encoder
	flusher  http.Flusher
	done     map[string]int64
	start    time.Time
	lastSent time.Time
	total    int64
	firstErr error
}

func (p *blobProgress) emit(ev node.BlobEvent) { // p.mu held
	_ = p.enc.Encode(ev)
	if p.flusher != nil {
		p.flusher.Flush()
	}
}

func (p *blobProgress) sum() int64 { // p.mu held
	var s int64
	for _, v := range p.done {
		s += v
	}
	return s
}

func (p *blobProgress) progress(ref blobs.BlobRef, pr blobs.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[ref.String()] = pr.DoneBytes
	if time.Since(p.lastSent) > 200*time.Millisecond {
		p.lastSent = time.Now()
		d := p.sum()
		p.emit(node.BlobEvent{DoneBytes: d, TotalBytes: p.total, Rate: float64(d) / time.Since(p.start).Seconds()})
	}
}

func (p *blobProgress) finished(ref blobs.BlobRef, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.firstErr == nil {
			p.firstErr = err
		}
		p.emit(node.BlobEvent{Ref: ref.String(), Error: err.Error()})
		return
	}
	p.done[ref.String()] = ref.Size
}

func (p *blobProgress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.sum()
	final := node.BlobEvent{Done: true, DoneBytes: d, TotalBytes: p.total, Rate: float64(d) / time.Since(p.start).Seconds()}
	if p.firstErr != nil {
		final.Error = errors.Join(p.firstErr).Error()
	}
	p.emit(final)
}
