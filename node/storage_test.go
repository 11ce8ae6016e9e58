package node

import (
	"strings"
	"testing"

	"github.com/meshwork/meshwork/blobs/crypt"
)

func TestMeshKeyInCode(t *testing.T) {
	k, err := crypt.NewFolderKey()
	if err != nil {
		t.Fatal(err)
	}
	const code = "meshinv1abcdefgh"
	full := appendMeshKey(code, k)
	inv, got, err := splitMeshKey(" " + strings.ToUpper(full[:20]) + "\n" + full[20:])
	if err != nil || strings.ToLower(inv) != code || got == nil || *got != k {
		t.Fatalf("round trip: %q %v %v", inv, got, err)
	}
	if inv, got, err := splitMeshKey(code); err != nil || got != nil || inv != code {
		t.Fatalf("code without a key: %q %v %v", inv, got, err)
	}
	other := appendMeshKey("meshinv1zzzzzzzz", k)
	for name, bad := range map[string]string{
		"typo":           full[:len(full)-3] + "aaa",
		"cut":            full[:len(full)-4],
		"another code's": code + other[strings.Index(other, "-"):],
		"no prefix":      code + "-" + full[len(code)+4:],
	} {
		if _, _, err := splitMeshKey(bad); err == nil || !strings.Contains(err.Error(), "mesh key part") {
			t.Errorf("%s key part: err %v", name, err)
		}
	}
}

func FuzzSplitMeshKey(f *testing.F) {
	k, _ := crypt.NewFolderKey()
	f.Add(appendMeshKey("meshinv1abc", k))
	f.Add("meshinv1abc-mk1")
	f.Add("-")
	f.Fuzz(func(t *testing.T, s string) {
		inv, key, err := splitMeshKey(s)
		if err == nil && key != nil {
			// Whatever is accepted is exactly what appendMeshKey makes.
			if want := strings.ToLower(strings.Join(strings.Fields(s), "")); appendMeshKey(strings.ToLower(inv), *key) != want {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

// FuzzDecodeItems: an object record's plaintext decodes only to items that
// encode back to it.
func FuzzDecodeItems(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := decodeItems(b)
		if err != nil {
			return
		}
		if again, err := decodeItems(encodeItems(items)); err != nil || len(again) != len(items) {
			t.Fatalf("round trip of %d items: %d, %v", len(items), len(again), err)
		}
	})
}
