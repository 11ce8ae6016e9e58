package identity

// TEMPORARY: signatures of the contract, to be replaced by the real
// implementation (the identity helper deletes this file).

import (
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func parseRole(s string) (Role, error) { panic("unimplemented") }

func (m MeshID) String() string                                            { panic("unimplemented") }
func (m MeshID) IsZero() bool                                              { return m == MeshID{} }
func (m MeshID) MarshalText() ([]byte, error)                              { panic("unimplemented") }
func (m *MeshID) UnmarshalText(b []byte) error                             { panic("unimplemented") }
func ParseMeshID(s string) (MeshID, error)                                 { panic("unimplemented") }
func (id EntryID) String() string                                          { panic("unimplemented") }
func (id InviteID) String() string                                         { panic("unimplemented") }
func loadOrCreateKey(path string) (crypto.PrivKey, bool, error)            { panic("unimplemented") }
func newMesh(key crypto.PrivKey, name string, now time.Time) (*Log, error) { panic("unimplemented") }
func decodeLog(data []byte) (*Log, error)                                  { panic("unimplemented") }

// Log is a verified, append-only membership log. Not safe for concurrent use.
type Log struct{}

func (l *Log) Encode() []byte                   { panic("unimplemented") }
func (l *Log) MeshID() MeshID                   { panic("unimplemented") }
func (l *Log) Len() int                         { panic("unimplemented") }
func (l *Log) Clone() *Log                      { panic("unimplemented") }
func (l *Log) Merge(other *Log) (int, error)    { panic("unimplemented") }
func (l *Log) Members() []Member                { panic("unimplemented") }
func (l *Log) Lookup(id peer.ID) (Member, bool) { panic("unimplemented") }
func (l *Log) IsMember(id peer.ID) bool         { panic("unimplemented") }
func (l *Log) Add(key crypto.PrivKey, id peer.ID, name string, role Role, now time.Time) error {
	panic("unimplemented")
}
func (l *Log) SetRole(key crypto.PrivKey, id peer.ID, role Role, now time.Time) error {
	panic("unimplemented")
}
func (l *Log) Revoke(key crypto.PrivKey, id peer.ID, now time.Time) error { panic("unimplemented") }
func (l *Log) NewInvite(key crypto.PrivKey, role Role, ttl time.Duration, addrs []ma.Multiaddr, now time.Time) (*Invite, error) {
	panic("unimplemented")
}
func (l *Log) Redeem(key crypto.PrivKey, g *InviteGrant, joiner peer.ID, name string, challenge, proof []byte, now time.Time) error {
	panic("unimplemented")
}

func (inv *Invite) Code() string                   { panic("unimplemented") }
func ParseInviteCode(code string) (*Invite, error) { panic("unimplemented") }
func (inv *Invite) Prove(joiner, redeemer peer.ID, name string, challenge []byte) ([]byte, error) {
	panic("unimplemented")
}
func (g *InviteGrant) ID() InviteID                   { panic("unimplemented") }
func (g *InviteGrant) MarshalBinary() ([]byte, error) { panic("unimplemented") }
func (g *InviteGrant) UnmarshalBinary(b []byte) error { panic("unimplemented") }
