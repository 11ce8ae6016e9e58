package folder

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

var _ Feed = (*syncproto.Object)(nil)

const (
	devA = syncproto.DeviceID("12D3KooWAliceAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	devB = syncproto.DeviceID("12D3KooWBobBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
)

// testNode is one device: a folder, its object replica and its store.
type testNode struct {
	t     testing.TB
	self  syncproto.DeviceID
	root  string
	db    *badger.DB
	st    *store.Store
	obj   *syncproto.Object
	f     *Folder
	fetch *testFetcher
}

// testFetcher copies chunks from the peers' stores, counting them.
type testFetcher struct {
	dst      *store.Store
	mu       sync.Mutex
	peers    []*store.Store
	chunks   atomic.Int64 // chunks copied from a peer
	onChunk  func() error // called before each chunk; an error stops the fetch
	requests map[blobs.ChunkID]int
}

func (tf *testFetcher) FetchManifest(ctx context.Context, ref blobs.BlobRef) (blobs.Manifest, error) {
	tf.mu.Lock()
	peers := tf.peers
	tf.mu.Unlock()
	for _, p := range peers {
		if m, err := p.Manifest(ctx, ref); err == nil {
			return m, nil
		}
	}
	return blobs.Manifest{}, store.ErrNoBlob
}

func (tf *testFetcher) FetchInto(ctx context.Context, m blobs.Manifest, sink transfer.Sink, progress func(blobs.Progress)) error {
	tf.mu.Lock()
	peers := tf.peers
	tf.mu.Unlock()
	buf := make([]byte, blobs.MaxChunkSize)
	done := make(map[blobs.ChunkID]bool)
	for _, c := range m.Chunks {
		if done[c.ID] {
			continue
		}
		done[c.ID] = true
		if ok, _ := tf.dst.Has(ctx, c.ID); ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if tf.onChunk != nil {
			if err := tf.onChunk(); err != nil {
				return err
			}
		}
		var got bool
		for _, p := range peers {
			data, err := p.Get(ctx, c.ID, buf)
			if err != nil {
				continue
			}
			tf.chunks.Add(1)
			tf.mu.Lock()
			tf.requests[c.ID]++
			tf.mu.Unlock()
			if err := sink.Put(ctx, c.ID, data); err != nil {
				return err
			}
			got = true
			break
		}
		if !got {
			return transfer.ErrUnavailable
		}
	}
	return nil
}

func newNode(t testing.TB, self syncproto.DeviceID, mod func(*Config)) *testNode {
	t.Helper()
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := store.Open(db, []byte("blobs/"), filepath.Join(dir, "chunks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	obj, err := syncproto.NewObject("folder1", syncproto.TypeFolder,
		map[syncproto.DeviceID]syncproto.Role{devA: syncproto.RoleOwner, devB: syncproto.RoleOwner},
		syncproto.Config{Self: self, Clock: hlc.NewClock(time.Now, 0)})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{t: t, self: self, root: filepath.Join(dir, "root"), db: db, st: st, obj: obj,
		fetch: &testFetcher{dst: st, requests: make(map[blobs.ChunkID]int)}}
	n.open(mod)
	return n
}

func (n *testNode) open(mod func(*Config)) {
	cfg := Config{Root: n.root, Name: string(n.self[8:13]), Store: n.st, DB: n.db, Prefix: []byte("folder/1/"),
		Feed: n.obj, Fetcher: n.fetch, Self: n.self}
	if mod != nil {
		mod(&cfg)
	}
	f, err := Open(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { f.Close() })
	n.f = f
}

// pair returns two wired nodes A and B.
func pair(t testing.TB) (*testNode, *testNode) {
	a, b := newNode(t, devA, nil), newNode(t, devB, nil)
	a.fetch.peers = []*store.Store{b.st}
	b.fetch.peers = []*store.Store{a.st}
	return a, b
}

func (n *testNode) scan() {
	n.t.Helper()
	if err := n.f.Scan(context.Background()); err != nil {
		n.t.Fatalf("scan %s: %v", n.self, err)
	}
}

// pull merges from's items into n's replica and applies what changed.
func (n *testNode) pull(from *testNode) error {
	var changed []syncproto.Item
	for _, it := range from.obj.Items() {
		ch, res, err := n.obj.Apply(it)
		if err != nil {
			n.t.Fatalf("merge %s: %v", it.Sync.ID, err)
		}
		if ch {
			changed = append(changed, res)
		}
	}
	return n.f.Apply(context.Background(), changed)
}

func (n *testNode) mustPull(from *testNode) {
	n.t.Helper()
	if err := n.pull(from); err != nil {
		n.t.Fatalf("apply on %s: %v", n.self, err)
	}
}

func (n *testNode) path(rel string) string { return filepath.Join(n.root, filepath.FromSlash(rel)) }

func (n *testNode) write(rel string, data []byte, mode fs.FileMode) {
	n.t.Helper()
	p := n.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		n.t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}).Read(b)
	return b
}

// tree describes a directory (outside .meshwork/) for comparisons.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == internalDir {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().Perm().String()
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			out[rel] = "link " + tg
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := blobs.SumChunk(data)
			out[rel] = "file " + fi.Mode().Perm().String() + " " + fi.ModTime().UTC().Format(time.RFC3339Nano) + " " + sum.String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, a, b *testNode) {
	t.Helper()
	ta, tb := tree(t, a.root), tree(t, b.root)
	for k, v := range ta {
		if tb[k] != v {
			t.Errorf("%s: A has %q, B has %q", k, v, tb[k])
		}
	}
	for k, v := range tb {
		if _, ok := ta[k]; !ok {
			t.Errorf("%s: only B has %q", k, v)
		}
	}
}

// noTemps fails if the user's tree holds a temporary file.
func noTemps(t testing.TB, root string) {
	t.Helper()
	for rel := range tree(t, root) {
		if strings.HasPrefix(filepath.Base(rel), tmpPrefix) {
			t.Errorf("temporary file visible: %s", rel)
		}
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editedOnBoth returns a pair whose file at path, synced at v1, was then
// edited on both sides and scanned there, not yet exchanged: a conflict
// once either pulls from the other.
func editedOnBoth(t testing.TB, path string) (a, b *testNode) {
	t.Helper()
	a, b = pair(t)
	a.write(path, []byte("v1"), 0o644)
	a.scan()
	b.mustPull(a)
	a.write(path, []byte("edited on A"), 0o644)
	b.write(path, []byte("edited on B, longer"), 0o644)
	a.scan()
	b.scan()
	return a, b
}
