package vault

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/zeebo/blake3"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// Proto is the vault protocol ID.
const Proto = "/meshwork/vault/1.0.0"

// Request types.
const (
	OpPutRecord = 1
	OpGetRecord = 2
	OpList      = 3
	OpHave      = 4
	OpPutChunk  = 5
	OpGetChunk  = 6
	OpUsage     = 7
	OpDelete    = 8
)

// Response statuses.
const (
	StatusOK       = 0x80
	StatusNotFound = 0x81
	StatusQuota    = 0x82
	StatusRefused  = 0x83
	StatusBad      = 0x84
	StatusInternal = 0x85
)

const (
	// MaxRecord bounds one record (a sealed snapshot of a mesh object).
	MaxRecord = 32 << 20
	// MaxHave bounds the IDs of one OpHave.
	MaxHave = 4096
	// MaxName bounds a record name.
	MaxName  = 512
	maxFrame = MaxRecord + MaxName + 16
	// maxSmallAnswer bounds the answers that carry no record or chunk.
	maxSmallAnswer = 64 << 10
	timeout        = 2 * time.Minute
)

// RecordInfo is one element of an OpList answer.
type RecordInfo struct {
	Name string `json:"name"`
	Hash string `json:"hash"` // hex BLAKE3 of the stored value
	Size int    `json:"size"`
	// Uploader is the device that put a manifest record (its peer ID text
	// form); empty for object records and for manifests stored before the
	// vault noted uploaders.
	Uploader string `json:"uploader,omitempty"`
}

// Usage is the vault's occupation (OpUsage, and mesh storage on the peer).
type Usage struct {
	Quota   int64  `json:"quota"` // 0: no quota
	Used    int64  `json:"used"`  // sealed chunk bytes held
	Chunks  int64  `json:"chunks"`
	Records int64  `json:"records"`
	Backend string `json:"backend"`
}

// Server serves a vault: records in badger under a prefix, chunks in a
// Backend, at most quota chunk bytes (0: no limit).
type Server struct {
	db     *badger.DB
	prefix []byte
	be     Backend
	beName string
	quota  int64
	log    *slog.Logger
	admin  func(device string) bool // may delete any manifest; nil: nobody
	putMu  sync.Mutex               // one chunk Put at a time: the quota check and the write are one step
	mu     sync.Mutex
	used   int64
	chunks int64
}

// NewServer opens a vault; it counts what the backend already holds.
func NewServer(ctx context.Context, db *badger.DB, prefix []byte, be Backend, backendName string, quota int64, logger *slog.Logger) (*Server, error) {
	s := &Server{db: db, prefix: prefix, be: be, beName: backendName, quota: quota, log: logger}
	err := be.Enumerate(ctx, func(_ blobs.ChunkID, size uint32) error {
		s.used += int64(size)
		s.chunks++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count the chunks of %s: %w", backendName, err)
	}
	if quota > 0 && s.used > quota {
		logger.Warn("storage holds more than its quota (the quota was lowered); nothing new is accepted", "used", s.used, "quota", quota)
	}
	return s, nil
}

// SetAdmin sets who may delete any manifest besides its uploader: the
// mesh's owners and admins (device is a peer ID's text form). Call it
// before serving.
func (s *Server) SetAdmin(admin func(device string) bool) { s.admin = admin }

func (s *Server) isAdmin(device string) bool { return s.admin != nil && s.admin(device) }

// Usage reports the quota and what is held.
func (s *Server) Usage() Usage {
	s.mu.Lock()
	u := Usage{Quota: s.quota, Used: s.used, Chunks: s.chunks, Backend: s.beName}
	s.mu.Unlock()
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: s.recKey(""), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			u.Records++
		}
		return nil
	})
	return u
}

func (s *Server) recKey(name string) []byte {
	return append(append(append([]byte{}, s.prefix...), 'r'), name...)
}

// upKey: P 'u' manifest record name → uploader record (see doc.go, "Store
// format").
func (s *Server) upKey(name string) []byte {
	return append(append(append([]byte{}, s.prefix...), 'u'), name...)
}

// uploaderVersion is the first byte of an uploader record:
// 0x01 device ID (text form).
const uploaderVersion = 1

func encodeUploader(device string) []byte { return append([]byte{uploaderVersion}, device...) }

func decodeUploader(b []byte) string {
	if len(b) < 2 || b[0] != uploaderVersion {
		return "" // unknown: treated as a manifest from before uploaders were noted
	}
	return string(b[1:])
}

// uploader returns who put manifest name ("" if not noted) and whether
// the record exists.
func (s *Server) uploader(txn *badger.Txn, name string) (string, bool, error) {
	if _, err := txn.Get(s.recKey(name)); errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	it, err := txn.Get(s.upKey(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", true, nil
	}
	if err != nil {
		return "", true, err
	}
	var up string
	err = it.Value(func(v []byte) error { up = decodeUploader(v); return nil })
	return up, true, err
}

// ValidName checks a record name and whether writer may write it:
// "obj/<object>/<writer>" or "man/<64 hex>".
func ValidName(name, writer string) error {
	if len(name) == 0 || len(name) > MaxName {
		return fmt.Errorf("record name of %d bytes (1 to %d)", len(name), MaxName)
	}
	switch {
	case strings.HasPrefix(name, "obj/"):
		parts := strings.Split(name, "/")
		if len(parts) != 3 || parts[1] == "" {
			return fmt.Errorf("record name %q: want obj/OBJECT/DEVICE", name)
		}
		if writer != "" && parts[2] != writer {
			return fmt.Errorf("record %q belongs to device %s, not to %s", name, parts[2], writer)
		}
	case strings.HasPrefix(name, "man/"):
		h := name[4:]
		if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
			return fmt.Errorf("record name %q: want man/ and 64 hex digits", name)
		}
	default:
		return fmt.Errorf("record name %q: unknown kind (want obj/ or man/)", name)
	}
	return nil
}

// Handle serves one request on st, from an already authorised member. A
// panic is recovered, logged at ERROR with the peer, protocol and stack,
// and the stream reset.
func (s *Server) Handle(st network.Stream) {
	remote := st.Conn().RemotePeer()
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("vault: handler panicked", "peer", remote.String(), "protocol", Proto, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			st.Reset()
		}
	}()
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(timeout))
	if err := s.HandleRW(st, remote.String()); err != nil {
		st.Reset()
	}
}

// HandleRW serves one request read from rw, from device (a member's peer
// ID text form), and writes the answer. The request frame is bounded by
// the largest request (a record, MaxRecord) before it is read; every field
// inside is checked against its own limit. A non-nil error means no answer
// was written and the stream must be reset.
func (s *Server) HandleRW(rw io.ReadWriter, device string) error {
	log := s.log.With("peer", device)
	rd := wire.NewReader(rw) // reserves the frame in the stream's resource scope
	defer rd.Release()
	typ, p, err := rd.ReadFrame(maxFrame)
	if err != nil {
		log.Debug("vault: bad request frame", "err", err)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	status, out := s.serve(ctx, device, typ, p)
	if status != StatusOK {
		log.Debug("vault: request not served", "op", typ, "status", status, "reason", string(out))
	}
	if err := wire.WriteFrame(rw, byte(status), out); err != nil {
		log.Debug("vault: write answer", "err", err)
	}
	return nil
}

// fail answers status with a reason, clipped to maxReason bytes (a reason
// may quote a hostile request).
func fail(status int, format string, a ...any) (int, []byte) {
	b := []byte(fmt.Sprintf(format, a...))
	if len(b) > maxReason {
		b = append(b[:maxReason-3:maxReason-3], "..."...)
	}
	return status, b
}

const maxReason = 1024

// serve answers one request of type typ with payload p from writer.
func (s *Server) serve(ctx context.Context, writer string, typ byte, p []byte) (int, []byte) {
	switch typ {
	case OpPutRecord:
		name, val, err := wire.ReadBytes(p)
		if err != nil {
			return fail(StatusBad, "put record: %v", err)
		}
		if err := ValidName(string(name), writer); err != nil {
			return fail(StatusRefused, "put record: %v", err)
		}
		if len(val) == 0 || len(val) > MaxRecord {
			return fail(StatusBad, "put record %q: %d bytes (1 to %d)", name, len(val), MaxRecord)
		}
		return s.putRecord(ctx, writer, string(name), val)
	case OpDelete:
		return s.serveDelete(ctx, writer, p)
	case OpGetRecord:
		return s.serveGetRecord(p)
	case OpList:
		return s.serveList(p)
	case OpHave:
		return s.serveHave(ctx, p)
	case OpPutChunk:
		if len(p) < 33 || len(p)-32 > MaxChunk {
			return fail(StatusBad, "put chunk: %d bytes (want id[32] and 1 to %d bytes)", len(p), MaxChunk)
		}
		return s.putChunk(ctx, blobs.ChunkID(p[:32]), p[32:])
	case OpGetChunk:
		return s.serveGetChunk(ctx, p)
	case OpUsage:
		b, _ := json.Marshal(s.Usage())
		return StatusOK, b
	}
	return fail(StatusBad, "unknown request type %d", typ)
}

// serveDelete answers OpDelete: writer deletes manifest record p, freeing its chunks.
func (s *Server) serveDelete(ctx context.Context, writer string, p []byte) (int, []byte) {
	if err := ValidName(string(p), ""); err != nil || !strings.HasPrefix(string(p), "man/") {
		return fail(StatusRefused, "delete %q: only manifest records (man/) can be deleted", p)
	}
	freed, err := s.deleteManifest(ctx, string(p), writer)
	if errors.Is(err, errNotYours) {
		return fail(StatusRefused, "delete %q: %v", p, err)
	}
	if err != nil {
		return fail(StatusInternal, "delete %q: %v", p, err)
	}
	return StatusOK, binary.BigEndian.AppendUint64(nil, uint64(freed))
}

// serveGetRecord answers OpGetRecord: the value of record p.
func (s *Server) serveGetRecord(p []byte) (int, []byte) {
	if err := ValidName(string(p), ""); err != nil {
		return fail(StatusBad, "get record: %v", err)
	}
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(s.recKey(string(p)))
		if err != nil {
			return err
		}
		val, err = it.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return fail(StatusNotFound, "record %q", p)
	}
	if err != nil {
		return fail(StatusInternal, "get record %q: %v", p, err)
	}
	return StatusOK, val
}

// serveList answers OpList: the records whose names start with p, as JSON.
func (s *Server) serveList(p []byte) (int, []byte) {
	if len(p) > MaxName {
		return fail(StatusBad, "list: prefix of %d bytes", len(p))
	}
	out := []RecordInfo{}
	pre := s.recKey(string(p))
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pre, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(s.prefix)+1:])
			err := it.Item().Value(func(v []byte) error {
				h := blake3.Sum256(v)
				out = append(out, RecordInfo{Name: name, Hash: hex.EncodeToString(h[:]), Size: len(v)})
				return nil
			})
			if err != nil {
				return err
			}
			if strings.HasPrefix(name, "man/") {
				if up, err := txn.Get(s.upKey(name)); err == nil {
					_ = up.Value(func(v []byte) error { out[len(out)-1].Uploader = decodeUploader(v); return nil })
				}
			}
		}
		return nil
	})
	if err != nil {
		return fail(StatusInternal, "list %q: %v", p, err)
	}
	b, _ := json.Marshal(out)
	return StatusOK, b
}

// serveHave answers OpHave: one byte per chunk ID in p, 1 if it is held.
func (s *Server) serveHave(ctx context.Context, p []byte) (int, []byte) {
	if len(p)%32 != 0 || len(p)/32 > MaxHave {
		return fail(StatusBad, "have: %d bytes is not 0..%d chunk IDs", len(p), MaxHave)
	}
	out := make([]byte, len(p)/32)
	for i := range out {
		ok, err := s.be.Has(ctx, blobs.ChunkID(p[32*i:32*i+32]))
		if err != nil {
			return fail(StatusInternal, "have: %v", err)
		}
		if ok {
			out[i] = 1
		}
	}
	return StatusOK, out
}

// serveGetChunk answers OpGetChunk: the sealed chunk whose ID is p.
func (s *Server) serveGetChunk(ctx context.Context, p []byte) (int, []byte) {
	if len(p) != 32 {
		return fail(StatusBad, "get chunk: %d bytes, want a chunk ID[32]", len(p))
	}
	id := blobs.ChunkID(p)
	ok, err := s.be.Has(ctx, id)
	if err == nil && !ok {
		return fail(StatusNotFound, "sealed chunk %v", id)
	}
	data, err := s.be.Get(ctx, id, nil)
	if err != nil {
		return fail(StatusInternal, "get chunk %v: %v", id, err)
	}
	return StatusOK, data
}

// refKey: P 'k' sealed chunk[32] manifest record name → "": the manifest
// lists the chunk. A chunk is deleted when the last manifest listing it is.
func (s *Server) refKey(id blobs.ChunkID, name string) []byte {
	return append(append(append(append([]byte{}, s.prefix...), 'k'), id[:]...), name...)
}

// putRecord stores a record from writer. A manifest record must be a
// sealed manifest whose chunks are all held; its chunks are then
// referenced by it, and writer is noted as its uploader. A manifest
// record another device put (or one from before uploaders were noted) is
// kept as it is: the put is answered OK, since the name (a keyed hash of
// the blob reference) says the content is the same.
func (s *Server) putRecord(ctx context.Context, writer, name string, val []byte) (int, []byte) {
	var refs []crypt.CipherRef
	if strings.HasPrefix(name, "man/") {
		var err error
		if refs, err = crypt.CipherChunks(val); err != nil {
			return fail(StatusBad, "put record %q: %v", name, err)
		}
		s.putMu.Lock() // no chunk deleted between this check and the refs
		defer s.putMu.Unlock()
		for _, r := range refs {
			ok, err := s.be.Has(ctx, r.ID)
			if err != nil {
				return fail(StatusInternal, "put record %q: %v", name, err)
			}
			if !ok {
				return fail(StatusNotFound, "put record %q: sealed chunk %v is not held (upload it first)", name, r.ID)
			}
		}
	}
	kept := false
	var replaced []crypt.CipherRef
	err := s.db.Update(func(txn *badger.Txn) error {
		if strings.HasPrefix(name, "man/") {
			up, exists, err := s.uploader(txn, name)
			if err != nil {
				return err
			}
			if exists && up != writer {
				kept = true
				return nil
			}
		}
		if strings.HasPrefix(name, "man/") {
			var err error
			if replaced, err = s.dropRefs(txn, name); err != nil { // the uploader replaces its manifest
				return err
			}
			if err := txn.Set(s.upKey(name), encodeUploader(writer)); err != nil {
				return err
			}
		}
		for _, r := range refs {
			if err := txn.Set(s.refKey(r.ID, name), nil); err != nil {
				return err
			}
		}
		return txn.Set(s.recKey(name), val)
	})
	if err != nil {
		return fail(StatusInternal, "put record %q: %v", name, err)
	}
	if kept {
		s.log.Debug("vault: manifest already held from another device, kept", "name", name, "writer", writer)
	}
	if _, err := s.freeUnreferenced(ctx, replaced); err != nil {
		s.log.Warn("vault: free the chunks of a replaced manifest", "name", name, "err", err)
	}
	return StatusOK, nil
}

// dropRefs deletes the chunk references of the manifest record name holds
// now, if any, and returns them (to free what no manifest lists after).
func (s *Server) dropRefs(txn *badger.Txn, name string) ([]crypt.CipherRef, error) {
	it, err := txn.Get(s.recKey(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	val, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	refs, err := crypt.CipherChunks(val)
	if err != nil {
		return nil, nil
	}
	for _, r := range refs {
		if err := txn.Delete(s.refKey(r.ID, name)); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// errNotYours: a delete of a manifest the deleter did not upload.
var errNotYours = errors.New("only the device that uploaded it or a mesh owner or admin may delete it")

// deleteManifest deletes, for deleter, a manifest record and the chunks
// no other manifest lists; it returns the bytes freed. Only the manifest's
// uploader or a mesh admin (SetAdmin) may delete it, and only an admin one
// whose uploader is not noted (errNotYours otherwise).
func (s *Server) deleteManifest(ctx context.Context, name, deleter string) (int64, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	var refs []crypt.CipherRef
	err := s.db.Update(func(txn *badger.Txn) error {
		up, exists, err := s.uploader(txn, name)
		if err != nil || !exists {
			return err
		}
		if up != deleter && !s.isAdmin(deleter) {
			if up == "" {
				return fmt.Errorf("uploader not known (stored before uploaders were noted): %w", errNotYours)
			}
			return fmt.Errorf("uploaded by %s: %w", up, errNotYours)
		}
		it, err := txn.Get(s.recKey(name))
		if err != nil {
			return err
		}
		val, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		if refs, err = crypt.CipherChunks(val); err != nil {
			refs = nil // stored before manifests were checked: nothing to release
		}
		for _, r := range refs {
			if err := txn.Delete(s.refKey(r.ID, name)); err != nil {
				return err
			}
		}
		if err := txn.Delete(s.upKey(name)); err != nil {
			return err
		}
		return txn.Delete(s.recKey(name))
	})
	if err != nil {
		return 0, err
	}
	return s.freeUnreferenced(ctx, refs)
}

// freeUnreferenced deletes the chunks of refs no manifest lists any more,
// returning the bytes freed. s.putMu is held.
func (s *Server) freeUnreferenced(ctx context.Context, refs []crypt.CipherRef) (int64, error) {
	var freed int64
	done := map[blobs.ChunkID]bool{}
	for _, r := range refs {
		if done[r.ID] {
			continue
		}
		done[r.ID] = true
		var used bool
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: s.refKey(r.ID, "")})
			defer it.Close()
			it.Rewind()
			used = it.Valid()
			return nil
		})
		if err != nil {
			return freed, err
		}
		if used {
			continue
		}
		if ok, err := s.be.Has(ctx, r.ID); err != nil || !ok {
			continue
		}
		if err := s.be.Delete(ctx, r.ID); err != nil {
			return freed, err
		}
		s.mu.Lock()
		s.used -= int64(r.Size)
		s.chunks--
		s.mu.Unlock()
		freed += int64(r.Size)
	}
	return freed, nil
}

func (s *Server) putChunk(ctx context.Context, id blobs.ChunkID, data []byte) (int, []byte) {
	if got := blobs.SumChunk(data); got != id {
		return fail(StatusBad, "put chunk %v: data hashes to %v", id, got)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	have, err := s.be.Has(ctx, id)
	if err != nil {
		return fail(StatusInternal, "put chunk %v: %v", id, err)
	}
	if have {
		return StatusOK, nil
	}
	s.mu.Lock()
	full := s.quota > 0 && s.used+int64(len(data)) > s.quota
	used := s.used
	s.mu.Unlock()
	if full {
		return fail(StatusQuota, "put chunk %v: quota full (%d of %d bytes used, chunk %d bytes)", id, used, s.quota, len(data))
	}
	if err := s.be.Put(ctx, id, data); err != nil {
		return fail(StatusInternal, "put chunk %v: %v", id, err)
	}
	s.mu.Lock()
	s.used += int64(len(data))
	s.chunks++
	s.mu.Unlock()
	return StatusOK, nil
}
