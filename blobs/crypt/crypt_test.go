package crypt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/blobs"
)

// fixedKey returns a key with every byte b (tests only).
func fixedKey(b byte) FolderKey {
	var k FolderKey
	for i := range k {
		k[i] = b
	}
	return k
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestFolderKeyText(t *testing.T) {
	k, err := NewFolderKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := NewFolderKey()
	if err != nil {
		t.Fatal(err)
	}
	if k == k2 || k.IsZero() {
		t.Fatal("NewFolderKey: not random")
	}
	txt, _ := k.MarshalText()
	if !strings.HasPrefix(string(txt), "meshfolderkey") {
		t.Fatalf("text form %q", txt)
	}
	var back FolderKey
	if err := back.UnmarshalText(txt); err != nil || back != k {
		t.Fatalf("UnmarshalText: %v", err)
	}
	bin, _ := k.MarshalBinary()
	var back2 FolderKey
	if err := back2.UnmarshalBinary(bin); err != nil || back2 != k {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	// The secret never shows in String, %v or slog output.
	secret := string(txt[len("meshfolderkey"):])
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", k)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	for _, s := range []string{k.String(), fmt.Sprint(k), fmt.Sprintf("%v %s", k, k), logged.String()} {
		if strings.Contains(strings.ToLower(s), secret) || strings.Contains(s, fmt.Sprintf("%x", k[:])) {
			t.Errorf("secret key leaked in %q", s)
		}
	}
	if !strings.Contains(logged.String(), k.String()) {
		t.Errorf("log %q lacks key id %s", logged.String(), k)
	}
	// JSON (a key file) does carry the secret form.
	j, _ := json.Marshal(k)
	if string(j) != `"`+string(txt)+`"` {
		t.Errorf("json %s", j)
	}
	for _, bad := range []string{"", "meshfolderkey", string(txt[:len(txt)-1]), strings.ToUpper(string(txt)), "meshfolderkey" + strings.Repeat("a", 52)} {
		if _, err := ParseFolderKey(bad); err == nil {
			t.Errorf("ParseFolderKey(%q) accepted", bad)
		}
	}
	if err := back.UnmarshalBinary(bin[:31]); !errors.Is(err, blobs.ErrMalformed) {
		t.Errorf("short binary key: %v", err)
	}
}

func TestChunkRoundTrip(t *testing.T) {
	k := fixedKey(1)
	for _, n := range []int{1, 100, 256 << 10, blobs.MaxChunkSize} {
		plain := randBytes(uint64(n), n)
		sealed, ctID, err := SealChunk(k, plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != n+Overhead || blobs.SumChunk(sealed) != ctID {
			t.Fatalf("size %d: sealed %d bytes, id ok %v", n, len(sealed), blobs.SumChunk(sealed) == ctID)
		}
		got, err := OpenChunk(k, blobs.SumChunk(plain), sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: open: %v", n, err)
		}
	}
	if _, _, err := SealChunk(k, nil); !errors.Is(err, blobs.ErrMalformed) {
		t.Errorf("empty chunk: %v", err)
	}
	if _, _, err := SealChunk(k, make([]byte, blobs.MaxChunkSize+1)); !errors.Is(err, blobs.ErrMalformed) {
		t.Errorf("oversize chunk: %v", err)
	}
	if _, _, err := SealChunk(FolderKey{}, []byte("x")); !errors.Is(err, ErrZeroKey) {
		t.Errorf("zero key: %v", err)
	}
}

// TestChunkDedup: equal plaintext in one folder seals to equal bytes; the
// same plaintext in another folder seals to unrelated bytes.
func TestChunkDedup(t *testing.T) {
	a, b := fixedKey(1), fixedKey(2)
	plain := randBytes(7, 10000)
	s1, id1, _ := SealChunk(a, plain)
	s2, id2, _ := SealChunk(a, bytes.Clone(plain))
	if id1 != id2 || !bytes.Equal(s1, s2) {
		t.Fatal("same folder, same plaintext: different ciphertexts (no dedup)")
	}
	s3, id3, _ := SealChunk(b, plain)
	if id3 == id1 || bytes.Equal(s3, s1) {
		t.Fatal("different folders: equal ciphertexts")
	}
	diff := 0
	for i := range s1 {
		if s1[i] != s3[i] {
			diff++
		}
	}
	if diff < len(s1)*9/10 {
		t.Fatalf("different folders: only %d of %d bytes differ", diff, len(s1))
	}
	other := bytes.Clone(plain)
	other[0] ^= 1
	if _, id4, _ := SealChunk(a, other); id4 == id1 {
		t.Fatal("different plaintexts: equal ciphertext IDs")
	}
}

func TestChunkTamperAndWrongKey(t *testing.T) {
	k := fixedKey(1)
	plain := randBytes(3, 5000)
	pid := blobs.SumChunk(plain)
	sealed, _, _ := SealChunk(k, plain)
	for _, i := range []int{0, 1, len(sealed) / 2, len(sealed) - 1} {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := OpenChunk(k, pid, bad); err == nil {
			t.Errorf("flipped byte %d: opened", i)
		}
	}
	if _, err := OpenChunk(k, pid, sealed[:len(sealed)-1]); !errors.Is(err, ErrOpen) {
		t.Errorf("truncated: %v", err)
	}
	if _, err := OpenChunk(fixedKey(2), pid, sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := OpenChunk(k, blobs.SumChunk([]byte("other")), sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong plaintext id: %v", err)
	}
	if _, err := OpenChunk(k, pid, sealed[:Overhead]); !errors.Is(err, blobs.ErrMalformed) {
		t.Errorf("too short: %v", err)
	}
}

// TestNoPlaintextInCiphertext looks for any 16-byte window of the plaintext
// (and of names) inside everything sealed from it.
func TestNoPlaintextInCiphertext(t *testing.T) {
	k := fixedKey(9)
	plain := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. SECRET-MARKER-0123456789 "), 2000)
	sealed, ctID, _ := SealChunk(k, plain)
	m := Manifest{Chunks: []Chunk{{Plain: blobs.ChunkRef{ID: blobs.SumChunk(plain), Size: uint32(len(plain))}, Cipher: ctID}}}
	sm, err := SealManifest(k, m)
	if err != nil {
		t.Fatal(err)
	}
	name := "Documents/taxes/SECRET-MARKER-0123456789 return.pdf"
	sn, _ := SealName(k, name)
	rec, _ := SealRecord(k, plain[:4000], []byte(sn))
	all := [][]byte{sealed, sm, []byte(sn), rec}
	pid := m.Chunks[0].Plain.ID
	for _, c := range all {
		for i := 0; i+16 <= len(plain) && i < 200; i++ {
			if bytes.Contains(c, plain[i:i+16]) {
				t.Fatalf("plaintext window at %d found in ciphertext", i)
			}
		}
		for _, needle := range [][]byte{[]byte("SECRET"), []byte("taxes"), []byte("Documents"), pid[:8], []byte(pid.String()[5:20])} {
			if bytes.Contains(bytes.ToLower(c), bytes.ToLower(needle)) {
				t.Fatalf("found %q in ciphertext", needle)
			}
		}
	}
}

func testManifest(t *testing.T, k FolderKey, n int) Manifest {
	t.Helper()
	var m Manifest
	for i := range n {
		p := randBytes(uint64(100+i), 1000+i)
		_, ct, err := SealChunk(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.Chunks = append(m.Chunks, Chunk{Plain: blobs.ChunkRef{ID: blobs.SumChunk(p), Size: uint32(len(p))}, Cipher: ct})
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	k := fixedKey(1)
	for _, n := range []int{0, 1, 3, 200} {
		m := testManifest(t, k, n)
		s1, err := SealManifest(k, m)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := SealManifest(k, m)
		if bytes.Equal(s1, s2) {
			t.Error("manifest sealing is not randomized")
		}
		got, err := OpenManifest(k, s1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Plain().Ref() != m.Plain().Ref() || got.CipherManifest().Ref() != m.CipherManifest().Ref() || len(got.Chunks) != n {
			t.Fatalf("n=%d: round trip differs", n)
		}
		for i := range got.Chunks {
			if got.Chunks[i] != m.Chunks[i] {
				t.Fatalf("n=%d chunk %d differs", n, i)
			}
		}
		pub, err := CipherChunks(s1)
		if err != nil || len(pub) != n {
			t.Fatalf("CipherChunks: %v", err)
		}
		for i, c := range m.Cipher() {
			if pub[i] != c {
				t.Fatalf("public entry %d differs", i)
			}
		}
		// Tamper anywhere: public part or private part.
		for _, i := range []int{0, 1, len(s1) / 2, len(s1) - 1} {
			bad := bytes.Clone(s1)
			bad[i] ^= 0x80
			if _, err := OpenManifest(k, bad); err == nil {
				t.Errorf("n=%d flipped byte %d: opened", n, i)
			}
		}
		if _, err := OpenManifest(fixedKey(2), s1); !errors.Is(err, ErrOpen) {
			t.Errorf("wrong key: %v", err)
		}
	}
}

func TestNameRoundTrip(t *testing.T) {
	k := fixedKey(1)
	names := []string{"", "a", "dir/file.txt", strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("ü", MaxNameLen/2), "a\x00b"}
	seen := map[SealedName]string{}
	for _, name := range names {
		s, err := SealName(k, name)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := SealName(k, name)
		if s != s2 {
			t.Errorf("%q: sealing is not deterministic", name)
		}
		if prev, ok := seen[s]; ok {
			t.Errorf("%q and %q seal alike", name, prev)
		}
		seen[s] = name
		got, err := OpenName(k, s)
		if err != nil || got != name {
			t.Fatalf("%q: open: %q, %v", name, got, err)
		}
		if _, err := OpenName(fixedKey(2), s); !errors.Is(err, ErrOpen) {
			t.Errorf("%q: wrong key: %v", name, err)
		}
		o, _ := SealName(fixedKey(2), name)
		if o == s {
			t.Errorf("%q: same sealed name in two folders", name)
		}
		// Flip one text character.
		b := []byte(s)
		i := len(b) / 2
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		if _, err := OpenName(k, SealedName(b)); err == nil {
			t.Errorf("%q: tampered name opened", name)
		}
	}
	// Padding: names of 1..20 bytes share one sealed length.
	s1, _ := SealName(k, "a")
	s20, _ := SealName(k, strings.Repeat("b", 20))
	if len(s1) != len(s20) {
		t.Errorf("padding: sealed lengths %d and %d", len(s1), len(s20))
	}
	if _, err := SealName(k, strings.Repeat("z", MaxNameLen+1)); !errors.Is(err, blobs.ErrMalformed) {
		t.Errorf("long name: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	k := fixedKey(1)
	data := []byte(`{"version":3,"mtime":12345}`)
	ad := []byte("nabc")
	s1, _ := SealRecord(k, data, ad)
	s2, _ := SealRecord(k, data, ad)
	if bytes.Equal(s1, s2) {
		t.Error("records are not randomized")
	}
	got, err := OpenRecord(k, s1, ad)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("open: %v", err)
	}
	if _, err := OpenRecord(k, s1, []byte("nother")); !errors.Is(err, ErrOpen) {
		t.Errorf("moved to another item: %v", err)
	}
	if _, err := OpenRecord(fixedKey(2), s1, ad); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong key: %v", err)
	}
	bad := bytes.Clone(s1)
	bad[len(bad)-3] ^= 4
	if _, err := OpenRecord(k, bad, ad); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered: %v", err)
	}
	if e, _ := SealRecord(k, nil, nil); e == nil {
		t.Error("empty record")
	} else if got, err := OpenRecord(k, e, nil); err != nil || len(got) != 0 {
		t.Errorf("empty record: %v", err)
	}
}

// TestGolden pins format version 1: a fixed key and input must keep sealing
// to the same bytes (the deterministic parts).
func TestGolden(t *testing.T) {
	k := fixedKey(0x42)
	_, ctID, _ := SealChunk(k, []byte("meshwork"))
	sn, _ := SealName(k, "docs/readme.txt")
	golden := map[string]string{"chunk": ctID.String(), "name": string(sn), "keyid": k.String()}
	for what, got := range golden {
		if want := goldenV1[what]; got != want {
			t.Errorf("%s: got %s, want %s (format version 1 is frozen)", what, got, want)
		}
	}
}

var goldenV1 = map[string]string{
	"chunk": "chunkujya5k3gl46bqwhhowibv7gxmfawdmeioyd77zym6wfxbnlea7ma",
	"name":  "nagrfc5lvowfawruqwkte7hv3pofldocx4bflzow65yividqcfuv2axvyg6rtp54twj3v7conll77l6w2dlx4epsx67fcc6ijj2irxwj6llt3m5n65wt7o",
	"keyid": "folderkey:f4637e8673d892d8",
}
