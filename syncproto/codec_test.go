package syncproto

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/meshwork/meshwork/syncproto/hlc"
)

func sampleItems(t testing.TB) []Item {
	w := hlc.Timestamp{Wall: simStart.UnixMilli(), Logical: 3}
	hist := []History{{Sequence: 2, When: w, By: devB}, {Sequence: 1, When: hlc.FromTime(simStart), By: devA}}
	loser := Item{Sync: Sync{ID: "f", Updates: 2, Deleted: true, History: []History{{Sequence: 2, When: hlc.FromTime(simStart), By: devA}, hist[1]}}, Content: Content{Title: "gone"}}
	return []Item{
		{Sync: Sync{ID: "n", Updates: 1, History: hist[1:]}},
		{Sync: Sync{ID: "t", Updates: 2, NoConflicts: true, History: hist}, Content: Content{Title: "note ✓", Body: Text("hello\nworld")}},
		{Sync: Sync{ID: "b", Updates: 2, History: hist}, Content: Content{Body: Bytes{0, 1, 2, 255}}},
		{
			Sync: Sync{ID: "f", Updates: 2, History: hist, Conflicts: []Item{loser}},
			Content: Content{
				Title: "a.txt",
				Body: &FileEntry{Path: "dir/a.txt", Mode: 0o755, ModTime: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC),
					Size: 1 << 40, Blob: mustRef(t, "blake3-0123456789abcdef"), Symlink: ""},
				Enclosures: []Enclosure{{Ref: mustRef(t, "sha256-aa"), Size: 0, MediaType: "image/png"}, {Ref: mustRef(t, "blake3-bb"), Size: 99}},
			},
		},
		{Sync: Sync{ID: "l", Updates: 1, History: hist[1:]}, Content: Content{Body: &FileEntry{Path: "link", Mode: 0o777 | 1<<27, Symlink: "../target"}}},
	}
}

func TestItemRoundTrip(t *testing.T) {
	for _, it := range sampleItems(t) {
		if err := it.Validate(); err != nil {
			t.Fatalf("sample %q: %v", it.Sync.ID, err)
		}
		enc := EncodeItem(it)
		got, err := DecodeItem(enc)
		if err != nil {
			t.Fatalf("decode %q: %v", it.Sync.ID, err)
		}
		if !got.Equal(it) || !bytes.Equal(EncodeItem(got), enc) {
			t.Fatalf("round trip of %q:\n%s\n%s", it.Sync.ID, show(it), show(got))
		}
		if f, ok := it.Body.(*FileEntry); ok && !f.ModTime.Equal(got.Body.(*FileEntry).ModTime) {
			t.Fatalf("mtime %v came back as %v", f.ModTime, got.Body.(*FileEntry).ModTime)
		}
	}
}

func TestItemEncodingGolden(t *testing.T) {
	it := Item{Sync: Sync{ID: "a", Updates: 1, History: []History{{Sequence: 1, When: hlc.Timestamp{Wall: 1, Logical: 2}, By: "D"}}}, Content: Content{Title: "T", Body: Text("x")}}
	want := []byte("MWSP\x01I" +
		"\x01a" + // id
		"\x00" + // flags
		"\x01" + // updates
		"\x01" + "\x01\x03\x02\x02\x01D" + // one history record: seq 1, when+by, wall zz(1)=2, logical 2, by "D"
		"\x00" + // no conflicts
		"\x01T" + "\x02\x01x" + // title, text body
		"\x00") // no enclosures
	if got := EncodeItem(it); !bytes.Equal(got, want) {
		t.Fatalf("EncodeItem =\n%q\nwant\n%q", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := EncodeItem(sampleItems(t)[1])
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"bad magic", append([]byte("XXXX"), good[4:]...), ErrMalformed},
		{"version 2", append([]byte("MWSP\x02"), good[5:]...), ErrUnsupportedVersion},
		{"wrong kind", append([]byte("MWSP\x01C"), good[6:]...), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing", append(bytes.Clone(good), 0), ErrMalformed},
		{"non-minimal varint", []byte("MWSP\x01I\x81\x00a"), ErrMalformed},
		{"unknown flags", []byte("MWSP\x01I\x01a\x04"), ErrMalformed},
		{"huge count", []byte("MWSP\x01I\x01a\x00\x01\xff\xff\xff\xff\x0f"), ErrMalformed},
		{"no history", []byte("MWSP\x01I\x01a\x00\x00\x00\x00\x00\x00\x00"), ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := DecodeItem(tt.data); !errors.Is(err, tt.want) {
			t.Errorf("%s: DecodeItem = %v, want %v", tt.name, err, tt.want)
		}
	}
	// A reader's change is a valid item: roles are checked by Apply.
	if _, err := DecodeItem(good); err != nil {
		t.Fatal(err)
	}
}

func TestChangesRoundTrip(t *testing.T) {
	c := Changes{Object: "obj", Epoch: Epoch{1, 2, 3}, Head: 9}
	for i, it := range sampleItems(t) {
		c.Changes = append(c.Changes, Change{Seq: uint64(2*i + 1), Item: it})
	}
	enc := EncodeChanges(c)
	got, err := DecodeChanges(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(EncodeChanges(got), enc) || got.Cursor() != (Cursor{Epoch: c.Epoch, Seq: 9}) {
		t.Fatal("changes do not round-trip")
	}
	bad := c
	bad.Changes = []Change{c.Changes[1], c.Changes[0]}
	if _, err := DecodeChanges(EncodeChanges(bad)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("out-of-order changes: %v", err)
	}
	bad.Changes = []Change{{Seq: 10, Item: c.Changes[0].Item}}
	if _, err := DecodeChanges(EncodeChanges(bad)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("change beyond head: %v", err)
	}
}

func FuzzDecodeItem(f *testing.F) {
	for _, it := range sampleItems(f) {
		f.Add(EncodeItem(it))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := DecodeItem(data)
		if err != nil {
			return
		}
		if enc := EncodeItem(it); !bytes.Equal(enc, data) {
			t.Fatalf("decode/encode is not the identity:\n%q\n%q", data, enc)
		}
		// Merge must not panic on any valid item and must be idempotent.
		if m := Merge(&it, it); !Merge(&m, it).Equal(m) {
			t.Fatal("merge is not idempotent")
		}
	})
}

func FuzzDecodeChanges(f *testing.F) {
	c := Changes{Object: "obj", Epoch: Epoch{1}, Head: 20}
	for i, it := range sampleItems(f) {
		c.Changes = append(c.Changes, Change{Seq: uint64(i + 1), Item: it})
	}
	f.Add(EncodeChanges(c))
	f.Add(EncodeChanges(Changes{Object: "o", Epoch: Epoch{2}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeChanges(data)
		if err != nil {
			return
		}
		if enc := EncodeChanges(c); !bytes.Equal(enc, data) {
			t.Fatalf("decode/encode is not the identity:\n%q\n%q", data, enc)
		}
	})
}

func FuzzDecodeObject(f *testing.F) {
	sim := &simTime{t: simStart}
	a, b := twoEditors(f, sim)
	for _, it := range sampleItems(f) {
		it.Sync.Conflicts = nil
		if _, _, err := a.Apply(it); err != nil {
			f.Fatal(err)
		}
	}
	a.Update("x", Content{Title: "x"})
	a.SetCursor(devB, Cursor{Epoch: b.Epoch(), Seq: 3})
	data, _ := a.MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{Self: devA, Clock: sim.clockAt(0)}
		o, err := DecodeObject(data, cfg)
		if err != nil {
			return
		}
		enc, err := o.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("decode/encode is not the identity:\n%q\n%q", data, enc)
		}
	})
}
