package folder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/meshwork/meshwork/blobs/store"
)

// pairMode is pair with B in the given mode.
func pairMode(t *testing.T, modeB Mode) (*testNode, *testNode) {
	a := newNode(t, devA, nil)
	b := newNode(t, devB, func(c *Config) { c.Mode = modeB })
	a.fetch.peers = []*store.Store{b.st}
	b.fetch.peers = []*store.Store{a.st}
	return a, b
}

func TestMetadataMode(t *testing.T) {
	a, b := pairMode(t, ModeMetadata)
	ctx := context.Background()
	a.write("docs/one.txt", []byte("one\n"), 0o644)
	a.write("two.bin", randBytes(1, 300<<10), 0o644)
	a.scan()
	b.mustPull(a)
	if _, err := os.Lstat(b.path("docs/one.txt")); err == nil {
		t.Fatal("metadata mode wrote content before a fetch")
	}
	if st := b.f.Status(); st.Items != 3 || st.InSync != 1 {
		t.Fatalf("status before any fetch: %+v", st) // docs, docs/one.txt, two.bin
	}
	if err := b.f.Fetch(ctx, "docs/one.txt"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, b.path("docs/one.txt")); string(got) != "one\n" || !b.f.Present("docs/one.txt") || b.f.Present("two.bin") {
		t.Fatalf("after fetch: %q", got)
	}
	// A fetched file follows remote changes.
	a.write("docs/one.txt", []byte("one, edited\n"), 0o644)
	a.scan()
	b.mustPull(a)
	if got := readFile(t, b.path("docs/one.txt")); string(got) != "one, edited\n" {
		t.Fatalf("fetched file not updated: %q", got)
	}
	// Evict: gone from disk, no deletion reported by a scan, item kept.
	if err := b.f.Evict(ctx, "docs/one.txt"); err != nil {
		t.Fatal(err)
	}
	b.scan()
	if it, ok := b.obj.Item("docs/one.txt"); !ok || it.Sync.Deleted {
		t.Fatal("evict deleted the item")
	}
	if _, err := os.Lstat(b.path("docs/one.txt")); err == nil || b.f.Present("docs/one.txt") {
		t.Fatal("evicted file still here")
	}
	if err := b.f.Evict(ctx, "two.bin"); err == nil {
		t.Fatal("evicted a file that is not here")
	}
	if err := b.f.Fetch(ctx, "nope.txt"); err == nil {
		t.Fatal("fetched a path that is no item")
	}
	if err := a.f.Fetch(ctx, "two.bin"); !errors.Is(err, ErrNotOnDemand) {
		t.Fatalf("fetch in a full folder: %v", err)
	}
}

func TestSendOnlyReceiveOnly(t *testing.T) {
	a, b := pairMode(t, ModeSendOnly)
	a.write("from-a.txt", []byte("a\n"), 0o644)
	a.scan()
	b.mustPull(a)
	if _, err := os.Lstat(b.path("from-a.txt")); err == nil {
		t.Fatal("send-only applied a remote item")
	}
	if st := b.f.Status(); st.InSync != 1 {
		t.Fatalf("send-only status: %+v", st)
	}
	b.write("from-b.txt", []byte("b\n"), 0o644)
	b.scan()
	if _, ok := b.obj.Item("from-b.txt"); !ok {
		t.Fatal("send-only did not report a local change")
	}

	c, d := pairMode(t, ModeReceiveOnly)
	c.write("from-c.txt", []byte("c\n"), 0o644)
	c.scan()
	d.mustPull(c)
	if got := readFile(t, d.path("from-c.txt")); !bytes.Equal(got, []byte("c\n")) {
		t.Fatalf("receive-only did not apply: %q", got)
	}
	d.write("from-d.txt", []byte("d\n"), 0o644)
	d.scan()
	if _, ok := d.obj.Item("from-d.txt"); ok {
		t.Fatal("receive-only reported a local change")
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeFull, "full": ModeFull, "metadata": ModeMetadata, "send-only": ModeSendOnly, "receive-only": ModeReceiveOnly} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := ParseMode("sendonly"); err == nil {
		t.Error("ParseMode accepted sendonly")
	}
}
