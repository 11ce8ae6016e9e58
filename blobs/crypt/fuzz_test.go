package crypt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/blobs"
)

// The decoders must never panic, and whatever they accept must re-encode
// to the same bytes (deterministic forms) or open again (randomized ones).

func FuzzOpenChunk(f *testing.F) {
	k := fixedKey(1)
	plain := []byte("fuzz chunk")
	sealed, _, _ := SealChunk(k, plain)
	f.Add(sealed)
	f.Add(sealed[:Overhead])
	f.Add([]byte{1})
	f.Add([]byte{})
	pid := blobs.SumChunk(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := OpenChunk(k, pid, b)
		if err != nil {
			return
		}
		if !bytes.Equal(got, plain) {
			t.Fatal("opened to other plaintext")
		}
		again, _, _ := SealChunk(k, got)
		if !bytes.Equal(again, b) {
			t.Fatal("accepted a non-canonical sealed chunk")
		}
	})
}

func FuzzOpenManifest(f *testing.F) {
	k := fixedKey(1)
	for _, n := range []int{0, 1, 3} {
		var m Manifest
		for i := range n {
			p := bytes.Repeat([]byte{byte(i + 1)}, 10+i)
			_, ct, _ := SealChunk(k, p)
			m.Chunks = append(m.Chunks, Chunk{Plain: blobs.ChunkRef{ID: blobs.SumChunk(p), Size: uint32(len(p))}, Cipher: ct})
		}
		s, _ := SealManifest(k, m)
		f.Add(s)
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, perr := CipherChunks(b)
		m, err := OpenManifest(k, b)
		if err != nil {
			return
		}
		if perr != nil || len(pub) != len(m.Chunks) {
			t.Fatalf("opened but public part: %v", perr)
		}
		for i, c := range m.Cipher() {
			if pub[i] != c {
				t.Fatal("public part disagrees with opened manifest")
			}
		}
		s, err := SealManifest(k, m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := OpenManifest(k, s)
		if err != nil || m2.Plain().Ref() != m.Plain().Ref() || m2.CipherManifest().Ref() != m.CipherManifest().Ref() {
			t.Fatal("re-seal round trip differs")
		}
	})
}

func FuzzOpenName(f *testing.F) {
	k := fixedKey(1)
	for _, n := range []string{"", "a", "dir/file", strings.Repeat("x", 40)} {
		s, _ := SealName(k, n)
		f.Add(string(s))
	}
	f.Add("n")
	f.Add("naaaa")
	f.Fuzz(func(t *testing.T, s string) {
		name, err := OpenName(k, SealedName(s))
		if err != nil {
			return
		}
		if again, _ := SealName(k, name); string(again) != s {
			t.Fatal("accepted a non-canonical sealed name")
		}
	})
}

func FuzzOpenRecord(f *testing.F) {
	k := fixedKey(1)
	s, _ := SealRecord(k, []byte("record"), []byte("ad"))
	f.Add(s, []byte("ad"))
	f.Add([]byte{1}, []byte{})
	f.Fuzz(func(t *testing.T, b, ad []byte) {
		data, err := OpenRecord(k, b, ad)
		if err != nil {
			return
		}
		s, _ := SealRecord(k, data, ad)
		if got, err := OpenRecord(k, s, ad); err != nil || !bytes.Equal(got, data) {
			t.Fatal("re-seal round trip differs")
		}
	})
}

func FuzzParseFolderKey(f *testing.F) {
	k := fixedKey(7)
	txt, _ := k.MarshalText()
	f.Add(string(txt))
	f.Add("meshfolderkey")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseFolderKey(s)
		if err != nil {
			return
		}
		if txt, _ := k.MarshalText(); string(txt) != s {
			t.Fatal("accepted a non-canonical key text")
		}
	})
}
