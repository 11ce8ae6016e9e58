package folder

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/syncproto"
)

// itemRefPrefix names Meshwork blobs (package blobs, chunking version 1) in
// syncproto's "<hash>-<hex digest>" form. The digest is the 32-byte manifest
// hash followed by the blob size as a big-endian uint64, in lower-case hex.
// This text form is permanent once shipped.
const itemRefPrefix = "mwblob1-"

// ItemBlobRef returns the syncproto form of a blob ref ("mwblob1-<hex>");
// the zero BlobRef for the zero ref.
func ItemBlobRef(r blobs.BlobRef) syncproto.BlobRef {
	if r.IsZero() {
		return syncproto.BlobRef{}
	}
	b := append(r.Hash[:0:0], r.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Size))
	ref, err := syncproto.ParseBlobRef(itemRefPrefix + hex.EncodeToString(b))
	if err != nil {
		panic(err) // the form above always parses
	}
	return ref
}

// BlobRefOf parses the syncproto form written by ItemBlobRef.
func BlobRefOf(r syncproto.BlobRef) (blobs.BlobRef, error) {
	s := r.String()
	if s == "" {
		return blobs.BlobRef{}, nil
	}
	d, ok := strings.CutPrefix(s, itemRefPrefix)
	if !ok || len(d) != 80 {
		return blobs.BlobRef{}, fmt.Errorf("blob ref %q: not a %s ref: %w", s, strings.TrimSuffix(itemRefPrefix, "-"), blobs.ErrMalformed)
	}
	b, err := hex.DecodeString(d)
	if err != nil {
		return blobs.BlobRef{}, fmt.Errorf("blob ref %q: %w", s, blobs.ErrMalformed)
	}
	var out blobs.BlobRef
	copy(out.Hash[:], b)
	size := binary.BigEndian.Uint64(b[32:])
	if size > 1<<62 {
		return blobs.BlobRef{}, fmt.Errorf("blob ref %q: size out of range: %w", s, blobs.ErrMalformed)
	}
	out.Size = int64(size)
	return out, nil
}
