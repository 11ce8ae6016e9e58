package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
)

// maxManifestBatch bounds the MANIFEST requests pipelined on one stream.
const maxManifestBatch = 1024

// FetchManifests fetches the manifests of many blobs with few round trips:
// the requests are pipelined on one stream per peer (MANIFEST is an
// ordinary request of /meshwork/blobs/1.0.0; the server answers in order),
// peers asked in turn for what the earlier ones did not have. It returns
// the manifests that verified against their refs; refs nobody had are
// simply absent (the caller fetches them one by one, or reports them).
func (s *Service) FetchManifests(ctx context.Context, refs []blobs.BlobRef, peers []peer.ID) (map[blobs.BlobRef]blobs.Manifest, error) {
	out := make(map[blobs.BlobRef]blobs.Manifest, len(refs))
	left := refs
	var errs []error
	for _, p := range peers {
		var still []blobs.BlobRef
		for len(left) > 0 {
			n := min(len(left), maxManifestBatch)
			miss, err := s.fetchManifestBatch(ctx, left[:n], p, out)
			still = append(still, miss...)
			left = left[n:]
			if err != nil {
				errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
				still = append(still, left...)
				break
			}
		}
		left = still
		if len(left) == 0 || ctx.Err() != nil {
			break
		}
	}
	if len(left) > 0 && len(errs) > 0 {
		return out, fmt.Errorf("fetch %d manifests: %w", len(left), errors.Join(errs...))
	}
	return out, ctx.Err()
}

// fetchManifestBatch asks p for the manifests of refs on one stream and
// adds the verified ones to out; it returns the refs p did not answer with
// a valid manifest.
func (s *Service) fetchManifestBatch(ctx context.Context, refs []blobs.BlobRef, p peer.ID, out map[blobs.BlobRef]blobs.Manifest) ([]blobs.BlobRef, error) {
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "meshwork blobs"), p, ProtocolID)
	if err != nil {
		return refs, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	// Write every request from another goroutine, so that a server that
	// answers while we still write never deadlocks on full buffers.
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(st)
		var buf []byte
		for i, r := range refs {
			buf = manifestReq{ReqID: uint32(i + 1), Blob: r}.append(buf[:0])
			if _, err := w.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	bufp := s.getBuf(frameBufSize)
	defer s.putBuf(bufp)
	rd := bufio.NewReader(st)
	got := make([]bool, len(refs))
	var rerr error
	for answered := 0; answered < len(refs); answered++ {
		typ, payload, err := readFrame(rd, *bufp)
		if err != nil {
			rerr = err
			break
		}
		msg, err := decode(typ, payload)
		if err != nil {
			rerr = err
			break
		}
		var id uint32
		switch m := msg.(type) {
		case manifestResp:
			id = m.ReqID
			if id == 0 || int(id) > len(refs) || got[id-1] {
				rerr = fmt.Errorf("manifest answer to unknown request %d", id)
				break
			}
			var man blobs.Manifest
			if man.UnmarshalBinary(m.Manifest) == nil && man.Verify(refs[id-1]) == nil {
				out[refs[id-1]] = man
			}
		case errorResp:
			id = m.ReqID
			if id == 0 || int(id) > len(refs) || got[id-1] {
				rerr = fmt.Errorf("peer error %d: %q", m.Code, m.Text)
				break
			}
		default:
			rerr = fmt.Errorf("unexpected message type %#x", typ)
		}
		if rerr != nil {
			break
		}
		got[id-1] = true
	}
	if rerr != nil {
		st.Reset()
	}
	if err := <-werr; err != nil && rerr == nil {
		rerr = err
	}
	var miss []blobs.BlobRef
	for _, r := range refs {
		if _, ok := out[r]; !ok {
			miss = append(miss, r)
		}
	}
	return miss, rerr
}

// FetchManifest asks peers in turn for the manifest of ref and returns the
// first one that verifies against ref.
func (s *Service) FetchManifest(ctx context.Context, ref blobs.BlobRef, peers []peer.ID) (blobs.Manifest, error) {
	var errs []error
	for _, p := range peers {
		m, err := s.fetchManifestFrom(ctx, ref, p)
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
		if ctx.Err() != nil {
			break
		}
	}
	return blobs.Manifest{}, fmt.Errorf("fetch manifest %v: %w", ref, errors.Join(append(errs, ErrUnavailable)...))
}

func (s *Service) fetchManifestFrom(ctx context.Context, ref blobs.BlobRef, p peer.ID) (blobs.Manifest, error) {
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "meshwork blobs"), p, ProtocolID)
	if err != nil {
		return blobs.Manifest{}, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if _, err := st.Write(manifestReq{ReqID: 1, Blob: ref}.append(nil)); err != nil {
		return blobs.Manifest{}, err
	}
	bufp := s.getBuf(frameBufSize)
	defer s.putBuf(bufp)
	typ, payload, err := readFrame(bufio.NewReader(st), *bufp)
	if err != nil {
		st.Reset()
		return blobs.Manifest{}, fmt.Errorf("manifest answer from %s: %w", p, err)
	}
	msg, err := decode(typ, payload)
	if err != nil {
		st.Reset()
		return blobs.Manifest{}, fmt.Errorf("manifest answer from %s: %w", p, err)
	}
	switch m := msg.(type) {
	case manifestResp:
		var man blobs.Manifest
		if err := man.UnmarshalBinary(m.Manifest); err != nil {
			return blobs.Manifest{}, err
		}
		if err := man.Verify(ref); err != nil {
			return blobs.Manifest{}, err
		}
		return man, nil
	case errorResp:
		if m.Code == codeRefused {
			return blobs.Manifest{}, fmt.Errorf("%w: %q", ErrRefused, m.Text)
		}
		return blobs.Manifest{}, fmt.Errorf("peer error %d: %q", m.Code, m.Text)
	}
	return blobs.Manifest{}, fmt.Errorf("unexpected message type %#x", typ)
}
