package syncproto

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// Version signatures. Every version a device creates (Update, UpdateFrom,
// Delete, Resolve) is signed by that device's key; the signature travels
// with the version (Sync.Signature, one per version: the item and each of
// its conflicts) and is verified by every replica that receives the
// version from a peer (Object.ApplyFrom). The signed bytes are those of
// VersionMessage, documented in doc.go ("Signed versions").

// MaxSignatureLen is the largest Sync.Signature the encoding accepts.
// Ed25519 signatures, the only kind Meshwork writes, are 64 bytes.
const MaxSignatureLen = 256

// SignaturePrefix starts every signed version message: a domain
// separation, so that no other message a device key signs can pass for a
// version, and the version of the message layout.
const SignaturePrefix = "meshwork/version/v1\x00"

// Signer signs with the key of the device holding a replica (Config.Self).
// Implementations must be safe for concurrent use.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks that sig is device's signature of msg. device is a
// device (never an endpoint "DEVICE/NAME": versions of an endpoint are
// signed by its device). Implementations must be safe for concurrent use
// and fast for devices seen before (cache their keys).
type Verifier interface {
	Verify(device DeviceID, msg, sig []byte) error
}

// AuthorDevice returns the device whose key signs versions by `by`: by
// itself, or DEVICE for an endpoint "DEVICE/NAME".
func AuthorDevice(by DeviceID) DeviceID {
	dev, _, _ := strings.Cut(string(by), "/")
	return DeviceID(dev)
}

// VersionMessage returns the bytes an author signs for the version it (the
// item without its conflicts; it.Sync.Conflicts and it.Sync.Signature play
// no part) of an item of object obj. Layout (uv, zz, str as in codec.go;
// [32] thirty-two bytes):
//
//	SignaturePrefix
//	object:str item:str updates:uv flags:u8   flags bit 0 deleted, bit 1 noconflicts
//	top:history                               the topmost record: sequence, when, by
//	history-hash:[32]                         SHA-256 of nhist:uv history* (all records)
//	content-hash:[32]                         SHA-256 of the content encoding
//
// history and content are the codec's layouts, so the content hash covers
// the title, the body (for a FileEntry its path, mode, mtime, size, blob
// ref and symlink: the blob ref names the file's data) and the enclosures.
// The whole history is covered so that a relaying device cannot add
// records to a version (which would make it subsume, and so erase, other
// versions).
func VersionMessage(obj ObjectID, it Item) []byte {
	s := it.Sync
	b := make([]byte, 0, 128+len(obj)+len(s.ID))
	b = append(b, SignaturePrefix...)
	b = appendString(b, string(obj))
	b = appendString(b, string(s.ID))
	b = appendUvarint(b, uint64(s.Updates))
	b = append(b, syncFlags(s))
	b = appendHistory(b, s.Top())
	hh := sha256.Sum256(appendHistories(nil, s.History))
	b = append(b, hh[:]...)
	ch := sha256.Sum256(appendContent(nil, it.Content))
	return append(b, ch[:]...)
}

// SignVersion returns it with its Signature set: signer's signature of
// VersionMessage(obj, it). Conflicts are left as they are.
func SignVersion(obj ObjectID, it Item, signer Signer) (Item, error) {
	sig, err := signer.Sign(VersionMessage(obj, it))
	if err != nil {
		return Item{}, fmt.Errorf("sign item %q update %d in %q: %w", it.Sync.ID, it.Sync.Updates, obj, err)
	}
	if len(sig) == 0 || len(sig) > MaxSignatureLen {
		return Item{}, fmt.Errorf("sign item %q in %q: signature of %d bytes: %w", it.Sync.ID, obj, len(sig), ErrMalformed)
	}
	it.Sync.Signature = sig
	return it, nil
}

// VerifyVersion checks the signature of the version it (its conflicts
// are not checked) by the device of its topmost `by` (AuthorDevice). An
// unsigned version passes only when from, the device it was received from,
// is that device; from is empty when the version did not come straight
// from a device. It fails with ErrBadSignature.
func VerifyVersion(obj ObjectID, it Item, from DeviceID, v Verifier) error {
	top := it.Sync.Top()
	author := AuthorDevice(top.By)
	if len(it.Sync.Signature) == 0 {
		if from != "" && from == author {
			return nil // a version from before signatures, from its author
		}
		return fmt.Errorf("item %q update %d by %q, received from %q: unsigned: %w",
			it.Sync.ID, top.Sequence, top.By, from, ErrBadSignature)
	}
	if err := v.Verify(author, VersionMessage(obj, it), it.Sync.Signature); err != nil {
		return fmt.Errorf("item %q update %d by %q, received from %q: %v: %w",
			it.Sync.ID, top.Sequence, top.By, from, err, ErrBadSignature)
	}
	return nil
}
