package folder

import "testing"

// TestStateRecordVersions: state records round-trip with the version on
// disk, and records written before it (version 1) still read, with the
// version unknown.
func TestStateRecordVersions(t *testing.T) {
	st := fileState{Kind: kindFile, Perm: 0o644, Size: 5, MTime: 42, Inode: 7, By: devA, Seq: 300, Conflict: true}
	st.Blob.Size = 5
	st.Blob.Hash[0] = 9
	got, err := decodeState(st.encode())
	if err != nil || got != st {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	old := st.encode()
	old = old[:len(old)-2] // Seq 300 is a 2-byte uvarint
	old[0] = 1
	got, err = decodeState(old)
	if want := st; err != nil || got.Seq != 0 || func() bool { want.Seq = 0; return got != want }() {
		t.Fatalf("version 1 record: %+v %v", got, err)
	}
	if _, ok := got.base(); ok {
		t.Fatal("a version 1 record should have no known base")
	}
	for _, bad := range [][]byte{st.encode()[:len(st.encode())-1], append(st.encode(), 0), append([]byte{3}, st.encode()[1:]...)} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("bad record %x decoded", bad)
		}
	}
}
