package vault

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// ErrQuota: the storage peer's quota is full.
var ErrQuota = errors.New("storage peer quota full")

// Client asks storage peers.
type Client struct{ H host.Host }

func (c Client) call(ctx context.Context, p peer.ID, op byte, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout) // a storage peer that stops answering
	defer cancel()
	st, err := c.H.NewStream(network.WithAllowLimitedConn(ctx, "vault"), p, Proto)
	if err != nil {
		return nil, fmt.Errorf("open vault stream to %s: %w", p.ShortString(), err)
	}
	defer st.Close()
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := wire.WriteFrame(st, op, payload); err != nil {
		st.Reset()
		return nil, err
	}
	_ = st.CloseWrite()
	rd := wire.NewReader(st) // reserves the answer in the stream's resource scope
	defer rd.Release()
	typ, out, err := rd.ReadFrame(answerLimit(op))
	if err != nil {
		return nil, fmt.Errorf("read vault answer from %s: %w", p.ShortString(), err)
	}
	switch typ {
	case StatusOK:
		return out, nil
	case StatusNotFound:
		return nil, fmt.Errorf("storage peer %s: %s: %w", p.ShortString(), out, ErrNotFound)
	case StatusQuota:
		return nil, fmt.Errorf("storage peer %s: %s: %w", p.ShortString(), out, ErrQuota)
	default:
		return nil, fmt.Errorf("storage peer %s refused (status %#x): %s", p.ShortString(), typ, out)
	}
}

// answerLimit bounds the answer to op before it is read: a storage peer
// cannot make a device allocate more than the largest valid answer.
func answerLimit(op byte) int {
	switch op {
	case OpGetRecord, OpList:
		return maxFrame
	case OpGetChunk:
		return MaxChunk
	}
	return maxSmallAnswer // statuses, reasons, OpHave, OpUsage, OpDelete
}

// PutRecord stores a record.
func (c Client) PutRecord(ctx context.Context, p peer.ID, name string, val []byte) error {
	_, err := c.call(ctx, p, OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), val...))
	return err
}

// GetRecord fetches a record (an error wrapping ErrNotFound if absent).
func (c Client) GetRecord(ctx context.Context, p peer.ID, name string) ([]byte, error) {
	return c.call(ctx, p, OpGetRecord, []byte(name))
}

// List lists the records whose names start with prefix.
func (c Client) List(ctx context.Context, p peer.ID, prefix string) ([]RecordInfo, error) {
	b, err := c.call(ctx, p, OpList, []byte(prefix))
	if err != nil {
		return nil, err
	}
	var out []RecordInfo
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("list from %s: %w", p.ShortString(), err)
	}
	return out, nil
}

// Have reports which chunks the peer holds.
func (c Client) Have(ctx context.Context, p peer.ID, ids []blobs.ChunkID) ([]bool, error) {
	out := make([]bool, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), MaxHave)
		req := make([]byte, 0, 32*n)
		for _, id := range ids[:n] {
			req = append(req, id[:]...)
		}
		b, err := c.call(ctx, p, OpHave, req)
		if err != nil {
			return nil, err
		}
		if len(b) != n {
			return nil, fmt.Errorf("have from %s: %d answers for %d IDs", p.ShortString(), len(b), n)
		}
		for _, x := range b {
			out = append(out, x == 1)
		}
		ids = ids[n:]
	}
	return out, nil
}

// PutChunk uploads a sealed chunk (an error wrapping ErrQuota when full).
func (c Client) PutChunk(ctx context.Context, p peer.ID, id blobs.ChunkID, data []byte) error {
	_, err := c.call(ctx, p, OpPutChunk, append(append(make([]byte, 0, 32+len(data)), id[:]...), data...))
	return err
}

// GetChunk fetches a sealed chunk and checks its hash.
func (c Client) GetChunk(ctx context.Context, p peer.ID, id blobs.ChunkID) ([]byte, error) {
	b, err := c.call(ctx, p, OpGetChunk, id[:])
	if err != nil {
		return nil, err
	}
	if got := blobs.SumChunk(b); got != id {
		return nil, fmt.Errorf("sealed chunk %v from %s hashes to %v: %w", id, p.ShortString(), got, blobs.ErrMismatch)
	}
	return b, nil
}

// DeleteManifest deletes a manifest record; the peer deletes the sealed
// chunks no other manifest lists and returns the bytes freed.
func (c Client) DeleteManifest(ctx context.Context, p peer.ID, name string) (int64, error) {
	b, err := c.call(ctx, p, OpDelete, []byte(name))
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("delete %s at %s: answer of %d bytes", name, p.ShortString(), len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Usage asks the peer for its quota and occupation.
func (c Client) Usage(ctx context.Context, p peer.ID) (Usage, error) {
	var u Usage
	b, err := c.call(ctx, p, OpUsage, nil)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("usage from %s: %w", p.ShortString(), err)
	}
	return u, nil
}
