package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/identity"
)

// DefaultPort is the TCP and UDP (QUIC) port a relay listens on by default.
const DefaultPort = 4001

// DHTProtocolPrefix is the protocol prefix of Meshwork's own Kademlia DHT
// (so its protocol is "/meshwork/kad/1.0.0"). It keeps Meshwork nodes out
// of the public IPFS DHT. Nodes must use the same prefix.
const DHTProtocolPrefix protocol.ID = "/meshwork"

// KeyFile is the name of the relay's identity key inside its state directory.
const KeyFile = "relay.key"

// ConfigFile is the name of the optional config file inside the state directory.
const ConfigFile = "meshrelay.json"

// DefaultListenAddrs returns the default listen addresses: TCP and QUIC on
// DefaultPort, IPv4 and IPv6, all interfaces.
func DefaultListenAddrs() []ma.Multiaddr {
	return []ma.Multiaddr{
		ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort)),
		ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort)),
		ma.StringCast(fmt.Sprintf("/ip6/::/tcp/%d", DefaultPort)),
		ma.StringCast(fmt.Sprintf("/ip6/::/udp/%d/quic-v1", DefaultPort)),
	}
}

// Config configures a relay Server. The zero value of every field but Key
// means "the default".
type Config struct {
	// Key is the relay's identity; its peer ID is part of the relay's
	// address, so it must persist (identity.LoadOrCreateKey).
	Key crypto.PrivKey

	// ListenAddrs default to DefaultListenAddrs.
	ListenAddrs []ma.Multiaddr
	// AnnounceAddrs are advertised in addition to the listen addresses
	// (a VPS behind 1:1 NAT, a DNS name: /dns4/relay.example.org/tcp/4001).
	AnnounceAddrs []ma.Multiaddr

	// AllowMeshes lists meshes whose members may reserve once they have
	// proved membership over AuthProtocolID.
	AllowMeshes []identity.MeshID
	// AllowDevices lists devices that may reserve without a proof.
	AllowDevices []peer.ID
	// Open lets every peer reserve and connect. It must be asked for.
	Open bool

	Limits Limits

	// MetricsAddr is the host:port of the Prometheus endpoint (/metrics);
	// empty disables it.
	MetricsAddr string

	// DHTProtocolPrefix defaults to DHTProtocolPrefix.
	DHTProtocolPrefix protocol.ID
	// DHTBootstrapPeers are other DHT servers (usually other relays).
	DHTBootstrapPeers []peer.AddrInfo

	// ResourceMemory and ResourceFDs scale libp2p's resource manager
	// limits; zero scales them to the machine (a share of its memory and
	// file descriptors).
	ResourceMemory int64
	ResourceFDs    int
}

// Limits are the relay's resource limits.
type Limits struct {
	// Data is the number of bytes relayed in each direction of one relayed
	// connection before the relay resets it. Default: 16 GiB.
	Data int64
	// Duration is the lifetime of one relayed connection. Default: 12 h.
	Duration time.Duration
	// ReservationTTL is how long a reservation lasts before the client
	// must renew it. Default: 1 h.
	ReservationTTL time.Duration
	// MaxReservations bounds reservations held at once. Default: 1024.
	MaxReservations int
	// MaxCircuits bounds relayed connections per peer. Default: 64.
	MaxCircuits int
	// MaxReservationsPerIP bounds reservations from one IP address
	// (devices behind one home NAT). Default: 32.
	MaxReservationsPerIP int
	// MaxReservationsPerASN bounds reservations from one network
	// operator. Default: 256.
	MaxReservationsPerASN int
	// BufferSize is the copy buffer of each direction of a circuit.
	// Default: 32 KiB.
	BufferSize int
	// MaxLogSize bounds an encoded membership log. Default: 4 MiB.
	MaxLogSize int
	// MaxAuthorised bounds the peers remembered as authorised. Default:
	// 4 × MaxReservations.
	MaxAuthorised int
	// MaxConcurrentAuth bounds membership proofs checked at once (each
	// costs a signature check per log entry). Default: 4.
	MaxConcurrentAuth int
}

// DefaultLimits returns the limits used for zero fields: enough for a whole
// sync session over one relayed connection.
func DefaultLimits() Limits {
	return Limits{
		Data:                  16 << 30,
		Duration:              12 * time.Hour,
		ReservationTTL:        time.Hour,
		MaxReservations:       1024,
		MaxCircuits:           64,
		MaxReservationsPerIP:  32,
		MaxReservationsPerASN: 256,
		BufferSize:            32 << 10,
		MaxLogSize:            DefaultMaxLogSize,
		MaxConcurrentAuth:     4,
	}
}

// ErrNoKey reports a Config without an identity key.
var ErrNoKey = errors.New("relay config has no identity key")

// withDefaults returns c with zero fields set to their defaults, or an
// error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Key == nil {
		return c, ErrNoKey
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs()
	}
	if c.DHTProtocolPrefix == "" {
		c.DHTProtocolPrefix = DHTProtocolPrefix
	}
	if c.ResourceMemory < 0 || c.ResourceFDs < 0 {
		return c, fmt.Errorf("relay config: negative resource limit (memory %d, fds %d)", c.ResourceMemory, c.ResourceFDs)
	}
	d := DefaultLimits()
	l := &c.Limits
	setInt64 := func(name string, v *int64, def int64) error {
		if *v < 0 {
			return fmt.Errorf("relay config: limit %s is negative: %d", name, *v)
		}
		if *v == 0 {
			*v = def
		}
		return nil
	}
	setInt := func(name string, v *int, def int) error {
		x := int64(*v)
		err := setInt64(name, &x, int64(def))
		*v = int(x)
		return err
	}
	setDur := func(name string, v *time.Duration, def time.Duration) error {
		x := int64(*v)
		err := setInt64(name, &x, int64(def))
		*v = time.Duration(x)
		return err
	}
	if err := errors.Join(
		setInt64("data", &l.Data, d.Data),
		setDur("duration", &l.Duration, d.Duration),
		setDur("reservation ttl", &l.ReservationTTL, d.ReservationTTL),
		setInt("max reservations", &l.MaxReservations, d.MaxReservations),
		setInt("max circuits", &l.MaxCircuits, d.MaxCircuits),
		setInt("max reservations per ip", &l.MaxReservationsPerIP, d.MaxReservationsPerIP),
		setInt("max reservations per asn", &l.MaxReservationsPerASN, d.MaxReservationsPerASN),
		setInt("buffer size", &l.BufferSize, d.BufferSize),
		setInt("max log size", &l.MaxLogSize, d.MaxLogSize),
		setInt("max concurrent auth", &l.MaxConcurrentAuth, d.MaxConcurrentAuth),
	); err != nil {
		return c, err
	}
	// After MaxReservations has its default (argument order above is
	// not specified for plain operands).
	if err := setInt("max authorised", &l.MaxAuthorised, 4*l.MaxReservations); err != nil {
		return c, err
	}
	if l.Duration < time.Second {
		return c, fmt.Errorf("relay config: limit duration %v is under a second", l.Duration)
	}
	if l.Duration/time.Second > 1<<32-1 {
		return c, fmt.Errorf("relay config: limit duration %v does not fit the circuit protocol", l.Duration)
	}
	if l.BufferSize > 1<<20 {
		return c, fmt.Errorf("relay config: buffer size %d is over 1 MiB", l.BufferSize)
	}
	return c, nil
}
