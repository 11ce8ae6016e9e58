package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/node/internal/wire"
)

func newServer(t testing.TB, quota int64) (*Server, *DirBackend) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	be, err := OpenDir(filepath.Join(t.TempDir(), "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(context.Background(), db, []byte("vault/"), be, "test", quota, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, be
}

func putChunkReq(data []byte) []byte {
	id := blobs.SumChunk(data)
	return append(id[:], data...)
}

func TestRecords(t *testing.T) {
	s, _ := newServer(t, 0)
	ctx := context.Background()
	put := func(writer, name, val string) int {
		st, _ := s.serve(ctx, writer, OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), val...))
		return st
	}
	if st := put("devA", "obj/folder-1/devA", "sealed A"); st != StatusOK {
		t.Fatalf("own record: status %#x", st)
	}
	for _, c := range []struct{ writer, name string }{
		{"devB", "obj/folder-1/devA"}, // another device's record
		{"devA", "obj/folder-1"},      // malformed
		{"devA", "man/xyz"},           // not 64 hex
		{"devA", "other/thing"},       // unknown kind
		{"devA", ""},
	} {
		if st := put(c.writer, c.name, "x"); st == StatusOK {
			t.Errorf("put %q by %s accepted", c.name, c.writer)
		}
	}
	if st := put("devB", "man/"+strings.Repeat("ab", 32), "not a sealed manifest"); st != StatusBad {
		t.Fatalf("manifest record that is not a sealed manifest: status %#x", st)
	}
	sm := sealedManifest(t, s, [][]byte{[]byte("chunk one")}, false)
	if st := put("devB", "man/"+strings.Repeat("ab", 32), string(sm)); st != StatusNotFound {
		t.Fatalf("manifest of chunks not held: status %#x", st)
	}
	sm = sealedManifest(t, s, [][]byte{[]byte("chunk one")}, true)
	if st := put("devB", "man/"+strings.Repeat("ab", 32), string(sm)); st != StatusOK {
		t.Fatalf("manifest record: status %#x", st)
	}
	st, val := s.serve(ctx, "devB", OpGetRecord, []byte("obj/folder-1/devA"))
	if st != StatusOK || string(val) != "sealed A" {
		t.Fatalf("get: %#x %q", st, val)
	}
	if st, _ := s.serve(ctx, "devB", OpGetRecord, []byte("obj/folder-2/devA")); st != StatusNotFound {
		t.Fatalf("get missing: %#x", st)
	}
	st, list := s.serve(ctx, "devB", OpList, []byte("obj/"))
	var infos []RecordInfo
	if st != StatusOK || json.Unmarshal(list, &infos) != nil || len(infos) != 1 || infos[0].Name != "obj/folder-1/devA" || infos[0].Size != 8 {
		t.Fatalf("list: %#x %s", st, list)
	}
	if u := s.Usage(); u.Records != 2 || u.Chunks != 1 {
		t.Fatalf("usage %+v", u)
	}
}

var testKey = crypt.FolderKey{1, 2, 3}

// sealedManifest seals chunks (uploading them with upload) and returns
// their sealed manifest.
func sealedManifest(t testing.TB, s *Server, chunks [][]byte, upload bool) []byte {
	t.Helper()
	var m crypt.Manifest
	for _, c := range chunks {
		sealed, ct, err := crypt.SealChunk(testKey, c)
		if err != nil {
			t.Fatal(err)
		}
		if upload {
			if st, msg := s.serve(context.Background(), "d", OpPutChunk, putChunkReq(sealed)); st != StatusOK {
				t.Fatalf("put chunk: %#x %s", st, msg)
			}
		}
		m.Chunks = append(m.Chunks, crypt.Chunk{Plain: blobs.ChunkRef{ID: blobs.SumChunk(c), Size: uint32(len(c))}, Cipher: ct})
	}
	b, err := crypt.SealManifest(testKey, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeleteManifest: deleting a manifest deletes the chunks only it lists.
func TestDeleteManifest(t *testing.T) {
	s, _ := newServer(t, 0)
	ctx := context.Background()
	shared, onlyA, onlyB := []byte("shared chunk"), []byte("chunk of A only"), []byte("chunk of B only")
	nameA, nameB := "man/"+strings.Repeat("aa", 32), "man/"+strings.Repeat("bb", 32)
	for name, cs := range map[string][][]byte{nameA: {shared, onlyA}, nameB: {onlyB, shared}} {
		sm := sealedManifest(t, s, cs, true)
		if st, msg := s.serve(ctx, "d", OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), sm...)); st != StatusOK {
			t.Fatalf("put %s: %#x %s", name, st, msg)
		}
	}
	if u := s.Usage(); u.Chunks != 3 {
		t.Fatalf("usage %+v", u)
	}
	st, out := s.serve(ctx, "d", OpDelete, []byte(nameA))
	if st != StatusOK || len(out) != 8 || int(out[7]) != len(onlyA)+crypt.Overhead {
		t.Fatalf("delete A: %#x %v", st, out)
	}
	if u := s.Usage(); u.Chunks != 2 || u.Used != int64(len(shared)+len(onlyB)+2*crypt.Overhead) || u.Records != 1 {
		t.Fatalf("after deleting A: %+v", u)
	}
	if st, _ := s.serve(ctx, "d", OpDelete, []byte(nameB)); st != StatusOK {
		t.Fatal(st)
	}
	if u := s.Usage(); u.Chunks != 0 || u.Used != 0 || u.Records != 0 {
		t.Fatalf("after deleting B: %+v", u)
	}
	if st, _ := s.serve(ctx, "d", OpDelete, []byte("obj/x/d")); st != StatusRefused {
		t.Fatalf("delete of an object record: %#x", st)
	}
}

func TestQuotaAndVerification(t *testing.T) {
	const quota = 250
	s, be := newServer(t, quota)
	ctx := context.Background()
	c1, c2, c3 := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 100), bytes.Repeat([]byte{3}, 100)
	for _, c := range [][]byte{c1, c2, c1} { // c1 twice: charged once
		if st, msg := s.serve(ctx, "d", OpPutChunk, putChunkReq(c)); st != StatusOK {
			t.Fatalf("put: %#x %s", st, msg)
		}
	}
	if st, msg := s.serve(ctx, "d", OpPutChunk, putChunkReq(c3)); st != StatusQuota {
		t.Fatalf("put over the quota: %#x %s", st, msg)
	}
	if u := s.Usage(); u.Used != 200 || u.Chunks != 2 {
		t.Fatalf("usage %+v", u)
	}
	bad := putChunkReq(c3)
	bad[0] ^= 1
	if st, _ := s.serve(ctx, "d", OpPutChunk, bad); st != StatusBad {
		t.Fatalf("put with a wrong ID: %#x", st)
	}
	id1, id3 := blobs.SumChunk(c1), blobs.SumChunk(c3)
	ids := append(append([]byte{}, id1[:]...), id3[:]...)
	if st, have := s.serve(ctx, "d", OpHave, ids); st != StatusOK || !bytes.Equal(have, []byte{1, 0}) {
		t.Fatalf("have: %#x %v", st, have)
	}
	if st, got := s.serve(ctx, "d", OpGetChunk, id1[:]); st != StatusOK || !bytes.Equal(got, c1) {
		t.Fatalf("get: %#x", st)
	}
	// A chunk altered at rest is not served, and is dropped.
	if err := os.WriteFile(be.path(id1), c2, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.serve(ctx, "d", OpGetChunk, id1[:]); st == StatusOK {
		t.Fatal("served a chunk that does not hash to its ID")
	}
	if ok, _ := be.Has(ctx, id1); ok {
		t.Fatal("corrupt chunk kept")
	}
	// A restarted server counts what is there.
	s2, err := NewServer(ctx, s.db, s.prefix, be, "test", quota, slog.New(slog.DiscardHandler))
	if err != nil || s2.Usage().Used != 100 {
		t.Fatalf("recount: %v %+v", err, s2.Usage())
	}
}

func TestSealedChunkLimit(t *testing.T) {
	s, _ := newServer(t, 0)
	ctx := context.Background()
	full := bytes.Repeat([]byte{7}, MaxChunk) // 4 MiB + 17: over blobs.MaxChunkSize
	if MaxChunk <= blobs.MaxChunkSize {
		t.Fatalf("MaxChunk %d not above blobs.MaxChunkSize", MaxChunk)
	}
	if st, msg := s.serve(ctx, "d", OpPutChunk, putChunkReq(full)); st != StatusOK {
		t.Fatalf("put a full sealed chunk: %#x %s", st, msg)
	}
	if st, _ := s.serve(ctx, "d", OpPutChunk, putChunkReq(append(full, 7))); st != StatusBad {
		t.Fatalf("put a chunk over the limit: %#x", st)
	}
}

// FuzzServe: no request crashes the server or takes it over its quota.
func FuzzServe(f *testing.F) {
	f.Add(byte(OpPutRecord), append(wire.AppendBytes(nil, []byte("obj/x/d")), 1, 2))
	f.Add(byte(OpPutChunk), putChunkReq([]byte("hello")))
	f.Add(byte(OpHave), make([]byte, 64))
	f.Add(byte(OpGetChunk), make([]byte, 32))
	f.Add(byte(OpList), []byte("obj/"))
	f.Add(byte(OpGetRecord), []byte("man/00"))
	f.Add(byte(OpUsage), []byte{})
	f.Add(byte(OpDelete), []byte("man/"+strings.Repeat("00", 32)))
	s, _ := newServer(f, 1000)
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		st, _ := s.serve(context.Background(), "d", typ, p)
		if st < StatusOK || st > StatusInternal {
			t.Fatalf("status %#x", st)
		}
		if u := s.Usage(); u.Used > 1000 {
			t.Fatalf("over quota: %+v", u)
		}
	})
}

// TestDeleteOnlyByUploader: a manifest is deleted only by the device that
// uploaded it or a mesh admin; another device's put of the same name keeps
// the uploader's record; a manifest stored before uploaders were noted is
// deleted by an admin only; the listing names the uploader.
func TestDeleteOnlyByUploader(t *testing.T) {
	s, _ := newServer(t, 0)
	s.SetAdmin(func(d string) bool { return d == "admin" })
	ctx := context.Background()
	name := "man/" + strings.Repeat("cd", 32)
	sm := sealedManifest(t, s, [][]byte{[]byte("owner's chunk")}, true)
	if st, msg := s.serve(ctx, "devA", OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), sm...)); st != StatusOK {
		t.Fatalf("put by devA: %#x %s", st, msg)
	}
	before := s.Usage()
	st, msg := s.serve(ctx, "devB", OpDelete, []byte(name))
	if st != StatusRefused || !strings.Contains(string(msg), "devA") {
		t.Fatalf("delete by devB: %#x %s", st, msg)
	}
	other := sealedManifest(t, s, [][]byte{[]byte("hostile chunk")}, true)
	if st, msg := s.serve(ctx, "devB", OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), other...)); st != StatusOK {
		t.Fatalf("put of a held name by devB: %#x %s", st, msg)
	}
	if st, got := s.serve(ctx, "devB", OpGetRecord, []byte(name)); st != StatusOK || !bytes.Equal(got, sm) {
		t.Fatalf("devB replaced devA's manifest: %#x", st)
	}
	st, list := s.serve(ctx, "devB", OpList, []byte("man/"))
	var infos []RecordInfo
	if st != StatusOK || json.Unmarshal(list, &infos) != nil || len(infos) != 1 || infos[0].Uploader != "devA" {
		t.Fatalf("list: %#x %s", st, list)
	}
	if u := s.Usage(); u.Records != before.Records {
		t.Fatalf("usage %+v, before %+v", u, before)
	}
	if st, _ := s.serve(ctx, "devA", OpDelete, []byte(name)); st != StatusOK {
		t.Fatalf("delete by its uploader: %#x", st)
	}
	if st, _ := s.serve(ctx, "x", OpGetRecord, []byte(name)); st != StatusNotFound {
		t.Fatalf("deleted manifest still there: %#x", st)
	}

	// Put again by devA: an admin may delete it.
	sm = sealedManifest(t, s, [][]byte{[]byte("owner's chunk")}, true)
	if st, _ := s.serve(ctx, "devA", OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), sm...)); st != StatusOK {
		t.Fatal(st)
	}
	if st, msg := s.serve(ctx, "admin", OpDelete, []byte(name)); st != StatusOK {
		t.Fatalf("delete by an admin: %#x %s", st, msg)
	}

	// A manifest stored before uploaders were noted (no uploader record).
	sm = sealedManifest(t, s, [][]byte{[]byte("owner's chunk")}, true)
	if st, _ := s.serve(ctx, "devA", OpPutRecord, append(wire.AppendBytes(nil, []byte(name)), sm...)); st != StatusOK {
		t.Fatal(st)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(s.upKey(name)) }); err != nil {
		t.Fatal(err)
	}
	if st, msg := s.serve(ctx, "devA", OpDelete, []byte(name)); st != StatusRefused || !strings.Contains(string(msg), "not known") {
		t.Fatalf("delete of an old manifest by a non-admin: %#x %s", st, msg)
	}
	if st, _ := s.serve(ctx, "admin", OpDelete, []byte(name)); st != StatusOK {
		t.Fatalf("delete of an old manifest by an admin: %#x", st)
	}
}
