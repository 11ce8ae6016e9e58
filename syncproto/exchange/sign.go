package exchange

import (
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

// KeySigner is a syncproto.Signer with a device's libp2p identity key.
type KeySigner struct{ Key crypto.PrivKey }

// Sign signs msg with the key.
func (s KeySigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.Key.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("sign with %v key: %w", s.Key.Type(), err)
	}
	return sig, nil
}

// maxCachedKeys bounds the PeerVerifier's cache; it is cleared when full.
const maxCachedKeys = 4096

// PeerVerifier is a syncproto.Verifier for devices named by their libp2p
// peer ID: the public key is extracted from the ID (Ed25519 peer IDs
// embed it) and cached. Only Ed25519 keys are accepted. The zero value is
// ready to use.
type PeerVerifier struct {
	mu   sync.Mutex
	keys map[syncproto.DeviceID]crypto.PubKey
}

var errNotEd25519 = errors.New("not an Ed25519 peer ID")

// Verify checks that sig is device's signature of msg.
func (v *PeerVerifier) Verify(device syncproto.DeviceID, msg, sig []byte) error {
	pub, err := v.key(device)
	if err != nil {
		return err
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil {
		return fmt.Errorf("verify signature of %s: %w", device, err)
	}
	if !ok {
		return fmt.Errorf("signature of %s does not verify", device)
	}
	return nil
}

func (v *PeerVerifier) key(device syncproto.DeviceID) (crypto.PubKey, error) {
	v.mu.Lock()
	pub, ok := v.keys[device]
	v.mu.Unlock()
	if ok {
		return pub, nil
	}
	id, err := peer.Decode(string(device))
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", device, err)
	}
	pub, err = id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("device %q: key: %w", device, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("device %q: %v key: %w", device, pub.Type(), errNotEd25519)
	}
	v.mu.Lock()
	if v.keys == nil || len(v.keys) >= maxCachedKeys {
		v.keys = make(map[syncproto.DeviceID]crypto.PubKey)
	}
	v.keys[device] = pub
	v.mu.Unlock()
	return pub, nil
}
