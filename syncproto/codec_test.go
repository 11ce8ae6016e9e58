package syncproto

import (
	"bytes"
	"errors"
	"strings"
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
	want := []byte("MWSP\x02I" +
		"\x01a" + // id
		"\x00" + // flags
		"\x01" + // updates
		"\x01" + "\x01\x03\x02\x02\x01D" + // one history record: seq 1, when+by, wall zz(1)=2, logical 2, by "D"
		"\x02\xab\xcd" + // signature
		"\x00" + // no conflicts
		"\x01T" + "\x02\x01x" + // title, text body
		"\x00") // no enclosures
	it.Sync.Signature = []byte{0xab, 0xcd}
	if got := EncodeItem(it); !bytes.Equal(got, want) {
		t.Fatalf("EncodeItem =\n%q\nwant\n%q", got, want)
	}
	// Version 1 (before signatures) still decodes, as unsigned.
	v1 := []byte("MWSP\x01I\x01a\x00\x01\x01\x01\x03\x02\x02\x01D\x00\x01T\x02\x01x\x00")
	got, err := DecodeItem(v1)
	it.Sync.Signature = nil
	if err != nil || !got.Equal(it) {
		t.Fatalf("DecodeItem(version 1) = %s, %v", show(got), err)
	}
}

// TestOldSnapshotDecodes: a replica snapshot of format version 1 (written
// before signatures) decodes, its items unsigned, and is written back as
// version 2 with the same content.
func TestOldSnapshotDecodes(t *testing.T) {
	sim := &simTime{t: simStart}
	a, _ := twoEditors(t, sim)
	for _, it := range sampleItems(t) {
		mustApply(t, a, it)
	}
	old := a.marshalV(1)
	if old[4] != 1 {
		t.Fatalf("version byte %d", old[4])
	}
	o, err := DecodeObject(old, Config{Self: devA, Clock: sim.clockAt(0)})
	if err != nil {
		t.Fatal(err)
	}
	now, _ := a.MarshalBinary()
	got, _ := o.MarshalBinary()
	if !bytes.Equal(got, now) {
		t.Fatal("a version-1 snapshot does not decode to the same replica")
	}
	for _, it := range o.Items() {
		if it.Sync.Signature != nil {
			t.Fatalf("item %q of a version-1 snapshot is signed", it.Sync.ID)
		}
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
		{"version 3", append([]byte("MWSP\x03"), good[5:]...), ErrUnsupportedVersion},
		{"version 0", append([]byte("MWSP\x00"), good[5:]...), ErrUnsupportedVersion},
		{"long signature", []byte("MWSP\x02I\x01a\x00\x01\x01\x01\x03\x02\x02\x01D\x81\x02" + strings.Repeat("s", 257) + "\x00\x01T\x02\x01x\x00"), ErrMalformed},
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

// signedSamples returns the sample items with their versions signed.
func signedSamples(t testing.TB) []Item {
	var out []Item
	for _, it := range sampleItems(t) {
		s := testSigner{testKey(it.Sync.Top().By)}
		for i, c := range it.Sync.Conflicts {
			it.Sync.Conflicts[i], _ = SignVersion("obj", c, s)
		}
		it, _ = SignVersion("obj", it, s)
		out = append(out, it)
	}
	return out
}

func FuzzDecodeItem(f *testing.F) {
	for _, it := range sampleItems(f) {
		f.Add(EncodeItem(it))
		f.Add(encodeItemV(it, 1))
	}
	for _, it := range signedSamples(f) {
		f.Add(EncodeItem(it))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := DecodeItem(data)
		if err != nil {
			return
		}
		if enc := encodeItemV(it, data[4]); !bytes.Equal(enc, data) {
			t.Fatalf("decode/encode is not the identity:\n%q\n%q", data, enc)
		}
		if data[4] == 1 && it.Sync.Signature != nil {
			t.Fatal("a version-1 item decoded with a signature")
		}
		// Verification must not panic, and refuses what it cannot check.
		for _, v := range it.Versions() {
			if err := VerifyVersion("obj", v, "", testVerifier{}); err != nil && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyVersion: %v", err)
			}
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
	f.Add(encodeChangesV(c, 1))
	f.Add(EncodeChanges(Changes{Object: "o", Epoch: Epoch{2}}))
	for i, it := range signedSamples(f) {
		c.Changes[i].Item = it
	}
	f.Add(EncodeChanges(c))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeChanges(data)
		if err != nil {
			return
		}
		if enc := encodeChangesV(c, data[4]); !bytes.Equal(enc, data) {
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
	f.Add(a.marshalV(1))
	s := signedObject(f, sim, devA)
	for _, it := range signedSamples(f) {
		it.Sync.Conflicts = nil
		if _, _, err := s.Apply(it); err != nil {
			f.Fatal(err)
		}
	}
	s.Update("x", Content{Title: "x"})
	data, _ = s.MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{Self: devA, Clock: sim.clockAt(0)}
		o, err := DecodeObject(data, cfg)
		if err != nil {
			return
		}
		if enc := o.marshalV(data[4]); !bytes.Equal(enc, data) {
			t.Fatalf("decode/encode is not the identity:\n%q\n%q", data, enc)
		}
	})
}
