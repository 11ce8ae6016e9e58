package node

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/meshwork/meshwork/blobs/s3store"
)

// Version is the daemon and CLI version.
const Version = "0.1.0"

// Config is everything a Node needs to start.
type Config struct {
	// Home holds the device key, the database and the control socket.
	Home string
	// ListenAddrs are libp2p multiaddrs; empty means DefaultListenAddrs.
	ListenAddrs []string
	// Relays are multiaddrs (with /p2p/ID) of meshrelay servers.
	Relays []string
	// NoMDNS turns LAN discovery off.
	NoMDNS bool
	// MaxSendRate caps the bytes per second this device serves blob data
	// at, over all peers together; 0 means no cap.
	MaxSendRate int64
	// HTTPAddr is where the HTTP API and web desktop listen: "" means
	// DefaultHTTPAddr, "off" none. When its port is taken, another port on
	// the same host is chosen.
	HTTPAddr string
	// HTTPHosts are extra Host names the HTTP API answers to, besides
	// localhost, 127.0.0.1 and [::1] (against DNS rebinding).
	HTTPHosts []string
	// Role is "" or "device" (default), or RoleStorage: a storage peer
	// (see "Storage peer", doc.go).
	Role string
	// Quota bounds the sealed chunk bytes a storage peer keeps (0: none).
	Quota int64
	// Store is a storage peer's chunk store: "" for HOME/vault, or
	// s3://bucket/prefix.
	Store string
	// S3 is the S3 endpoint and credentials for Store (from the config
	// file); Config.ApplyEnv lays the MESH_S3_* variables that are set over
	// it.
	S3 *s3store.Config
	// NoDirectWrites keeps received chunks in the page cache instead of
	// writing them with O_DIRECT (blobs/store/directio.go); meshd sets it
	// for MESHWORK_DIRECT_WRITES=0 (Config.ApplyEnv).
	NoDirectWrites bool
	// Now is the clock the node decides by (nil: time.Now), so that a test
	// can move time: invite expiry (making, serving and joining), the
	// times written into the membership log (init, revoke, redeem) and into
	// folder and object definitions, dial and hole-punch backoff, path news
	// quieting, the membership pull's rate limit, the storage upload
	// interval and its "last upload" times, the store-health probe and
	// quiet periods, last-seen times and the daemon's start time.
	//
	// Left on the wall clock, on purpose: stream and dial deadlines
	// (SetDeadline, context timeouts, timers and tickers: the network stack
	// and the runtime measure those in real time, a fake clock would not
	// move them); the folder-wait bookkeeping in insync.go and rounds.go
	// (scan coalescing and sync rounds are ordered against each other and
	// against libp2p's connection-opened times, which are wall-clock); the relay
	// reservation's renewal (its expiry comes from the relay's clock) and
	// the bounded wait for the hole-punch service (relays.go);
	// elapsed times for logs and results (time.Since: took, Elapsed,
	// WaitedMS); and the clock part of item IDs (objects.go, sync.go),
	// which only keeps IDs unique and roughly in creation order.
	Now func() time.Time
}

// DefaultHTTPAddr is the HTTP API's default address: loopback only.
const DefaultHTTPAddr = "127.0.0.1:8385"

// TokenPath is where the device's HTTP API token lives inside home.
func TokenPath(home string) string { return filepath.Join(home, "api-token") }

// DefaultPort is the TCP and UDP port a node listens on when it is free.
const DefaultPort = 4001

// DefaultListenAddrs listens on all interfaces, TCP and QUIC, port 4001.
func DefaultListenAddrs(port int) []string {
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
		fmt.Sprintf("/ip6/::/tcp/%d", port),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", port),
	}
}

// SocketPath is where the control API listens inside home.
func SocketPath(home string) string { return filepath.Join(home, "meshd.sock") }

// KeyPath is where the device key lives inside home.
func KeyPath(home string) string { return filepath.Join(home, "device.key") }
