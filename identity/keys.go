package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func loadOrCreateKey(path string) (crypto.PrivKey, bool, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("load device key %s: %v: %w", path, err, ErrMalformed)
		}
		if key.Type() != crypto.Ed25519 {
			return nil, false, fmt.Errorf("load device key %s: key type %v, want Ed25519: %w", path, key.Type(), ErrMalformed)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("load device key: %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("create device key %s: %w", path, err)
	}
	data, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("create device key %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return nil, false, fmt.Errorf("create device key: %w", err)
	}
	return key, true, nil
}

// writeFileAtomic writes data to path so that readers see either the old
// file or the complete new one: temp file in the same directory, write,
// fsync, close, rename, then fsync the directory. The temp file is removed
// on failure. The parent directory is created (0700) if missing.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

// deviceID returns the peer ID of an Ed25519 device key. Other key types are
// refused: their signatures may be malleable, which would make entry IDs
// malleable too, and their public keys are not inlined in peer IDs.
func deviceID(key crypto.PrivKey) (peer.ID, error) {
	if key == nil || key.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("device key must be Ed25519: %w", ErrMalformed)
	}
	return peer.IDFromPrivateKey(key)
}

// parsePeerID decodes a peer ID from the wire and checks that it is the
// canonical inline form of an Ed25519 public key, which it returns.
func parsePeerID(b []byte) (peer.ID, crypto.PubKey, error) {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", nil, fmt.Errorf("bad peer id: %v: %w", err, ErrMalformed)
	}
	pub, err := edPublicKey(id)
	if err != nil {
		return "", nil, err
	}
	return id, pub, nil
}

// edPublicKey extracts the Ed25519 public key inlined in id.
func edPublicKey(id peer.ID) (crypto.PubKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer id %s: no inline public key: %v: %w", id, err, ErrMalformed)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("peer id %s: key type %v, want Ed25519: %w", id, pub.Type(), ErrMalformed)
	}
	if again, err := peer.IDFromPublicKey(pub); err != nil || again != id {
		return nil, fmt.Errorf("peer id %s: not in canonical form: %w", id, ErrMalformed)
	}
	return pub, nil
}

// verifySig checks an Ed25519 signature by id's key over msg.
func verifySig(id peer.ID, msg, sig []byte) bool {
	pub, err := edPublicKey(id)
	if err != nil || len(sig) != sigLen {
		return false
	}
	ok, err := pub.Verify(msg, sig)
	return err == nil && ok
}
