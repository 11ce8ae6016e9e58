package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/node/internal/tlsbatch"
	"github.com/meshwork/meshwork/node/tunnel"
	"github.com/meshwork/meshwork/node/vault"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

// resourceLimits are the explicit limits of the resource manager. A personal
// mesh has few peers, so connection counts are modest; streams and memory
// are generous enough for parallel chunk transfers and tunnels, and bounded
// per protocol per peer so that one member (a lost or compromised device)
// can hold only so much of this device.
//
// Frames of Meshwork's framed protocols reserve their memory in the stream's
// scope as their bytes arrive, at low priority (internal/framebuf): a scope
// then holds at most 40 % of its memory limit in frames. So a peer's sync
// streams hold at most 19 MiB of frames (two 8 MiB frames, one each way,
// at once), its membership and invite streams 9.6 MiB each (one 8 MiB
// state); a stream that needs more is reset. Stream counts per peer: 16 sync
// sessions (the engine runs one each way at a time), 4 membership and invite
// streams, 32 vault requests, 128 blob fetches (each fetch uses one stream
// per peer, and 16 stay pooled) and 256 tunnelled connections (one stream
// each).
func resourceLimits() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:           512,
			ConnsInbound:    256,
			ConnsOutbound:   256,
			Streams:         8192,
			StreamsInbound:  4096,
			StreamsOutbound: 4096,
			Memory:          1 << 30,
			FD:              512,
		},
		Transient: rcmgr.ResourceLimits{
			Conns:          128,
			ConnsInbound:   64,
			ConnsOutbound:  64,
			Streams:        512,
			StreamsInbound: 256,
			Memory:         64 << 20,
		},
		// Per peer: room for stale connections. A device killed without a
		// clean close leaves its QUIC connections here until their idle
		// timeout; with 8 inbound a device restarted 8 times in a row was
		// refused (connection code 0x1001, resource limit exceeded). The
		// memory is mostly yamux receive windows (256 KiB reserved per
		// stream, growing to 16 MiB for a fast one).
		PeerDefault: rcmgr.ResourceLimits{
			Conns:           96,
			ConnsInbound:    64,
			ConnsOutbound:   32,
			Streams:         1024,
			StreamsInbound:  512,
			StreamsOutbound: 512,
			Memory:          512 << 20,
		},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{
			exchange.ProtocolID: {Streams: 32, StreamsInbound: 16, StreamsOutbound: 16, Memory: 48 << 20},
			ProtoMembership:     {Streams: 8, StreamsInbound: 4, StreamsOutbound: 4, Memory: 24 << 20},
			ProtoInvite:         {Streams: 8, StreamsInbound: 4, StreamsOutbound: 4, Memory: 24 << 20},
			vault.Proto:         {Streams: 64, StreamsInbound: 32, StreamsOutbound: 32, Memory: 96 << 20},
			// Blob streams hold yamux receive windows (up to 16 MiB for a
			// fast stream) and the served chunk buffers (of the chunk's size
			// class, up to 4 MiB each, reserved at once: blobs/transfer):
			// room for a fast transfer
			// with several chunks in flight, half the peer's memory.
			transfer.ProtocolID: {Streams: 256, StreamsInbound: 128, StreamsOutbound: 128, Memory: 256 << 20},
			tunnel.ProtocolID:   {Streams: 512, StreamsInbound: 256, StreamsOutbound: 256},
		},
		// A stream's own limit only has to let the largest frame through
		// (a vault record of 32 MiB at 40 %); the protocol-peer limits
		// above are the bounds.
		Stream: rcmgr.ResourceLimits{Memory: 96 << 20},
	}
	return partial.Build(scaling.AutoScale())
}

// newHost builds the libp2p host: QUIC-v1 and TCP, Noise and TLS, yamux,
// the resource manager with explicit limits, identify and ping (on by
// default), hole punching and the relay client, dialling a peer's private
// TCP addresses before its QUIC ones (ranker.go). addrs adds circuit
// addresses of live relay reservations to what the host advertises. hps
// receives go-libp2p's hole-punch service, which the punch retries use
// (punch.go).
func newHost(key crypto.PrivKey, listen []string, g *gater, addrs func([]ma.Multiaddr) []ma.Multiaddr, hps **holepunch.Service, relays []peer.AddrInfo) (host.Host, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits()), rcmgr.WithConnRateLimiters(connRateLimiter(relays)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		// TLS 1.3 first: AES-GCM with AES-NI costs about half of Noise's
		// ChaCha20-Poly1305 per byte, which is the sender's largest CPU cost
		// in bulk transfers (BenchmarkTransfer1GiB profiles). It is
		// libp2p's TLS with each write's records sent in one system call
		// (tlsbatch), the same bytes on the wire. Noise stays for peers
		// that prefer it.
		libp2p.Security(tlsbatch.ID, tlsbatch.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, Muxer()),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(g),
		// The option hands over the service that basichost builds (with its
		// own hole-punch address source), so that punch.go can ask it for
		// another attempt.
		libp2p.EnableHolePunching(func(s *holepunch.Service) error { *hps = s; return nil }),
		libp2p.EnableRelay(),
		libp2p.Ping(true),
		libp2p.AddrsFactory(addrs),
		libp2p.SwarmOpts(swarm.WithDialRanker(dialRanker)),
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, err
	}
	return h, nil
}

// connRateLimiter is the resource manager's limit on new connections per
// IP address: go-libp2p's default (per IPv4 address a burst of 16, then one
// every 5 s; loopback unlimited), except for the configured relays. Every
// relayed connection, in either direction, counts against the relay's IP
// address, so the default let a device that dialled a few offline members
// through its relay refuse the next circuit a member opened to it (the
// relay answered CONNECTION_FAILED) and its own next reservation ("rate
// limit exceeded"). A relay is named by the user; its addresses get a
// burst of 256 and 20 a second.
func connRateLimiter(relays []peer.AddrInfo) *rate.Limiter {
	prefixes := []rate.PrefixLimit{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Limit: rate.Limit{}},
		{Prefix: netip.MustParsePrefix("::1/128"), Limit: rate.Limit{}},
	}
	seen := map[netip.Addr]bool{}
	for _, ai := range relays {
		for _, a := range ai.Addrs {
			ip, err := manet.ToIP(a)
			if err != nil {
				continue
			}
			addr, ok := netip.AddrFromSlice(ip)
			if !ok || seen[addr.Unmap()] {
				continue
			}
			addr = addr.Unmap()
			seen[addr] = true
			prefixes = append(prefixes, rate.PrefixLimit{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Limit: relayConnRate})
		}
	}
	return &rate.Limiter{
		NetworkPrefixLimits: prefixes,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 0.2, Burst: 16}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 0.2, Burst: 16}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 0.5, Burst: 80}},
			},
			GracePeriod: time.Minute,
		},
	}
}

// relayConnRate is the connection rate allowed per configured relay address.
var relayConnRate = rate.Limit{RPS: 20, Burst: 256}

// listenWithFallback listens where configured, or by default on port
// 4001 (TCP and UDP, IPv4 and IPv6) — unless that port is taken, then on an
// OS-chosen port. go-libp2p starts as long as one listener works, so the
// port is probed here first rather than judged from libp2p's error.
func listenWithFallback(key crypto.PrivKey, listen []string, g *gater, addrs func([]ma.Multiaddr) []ma.Multiaddr, hps **holepunch.Service, relays []peer.AddrInfo) (host.Host, bool, error) {
	fellBack := false
	if len(listen) == 0 {
		port := DefaultPort
		if portTaken(DefaultPort) {
			port, fellBack = 0, true
		}
		listen = DefaultListenAddrs(port)
	}
	h, err := newHost(key, listen, g, addrs, hps, relays)
	if err != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", strings.Join(listen, ", "), err)
	}
	return h, fellBack, nil
}

// portTaken reports whether TCP or UDP port is in use on any address
// family this machine has.
func portTaken(port int) bool {
	inUse := func(err error) bool { return err != nil && errors.Is(err, syscall.EADDRINUSE) }
	for _, nw := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(nw, fmt.Sprintf(":%d", port))
		if inUse(err) {
			return true
		}
		if err == nil {
			ln.Close()
		}
	}
	for _, nw := range []string{"udp4", "udp6"} {
		pc, err := net.ListenPacket(nw, fmt.Sprintf(":%d", port))
		if inUse(err) {
			return true
		}
		if err == nil {
			pc.Close()
		}
	}
	return false
}

// isRelayed reports whether a connection's remote address goes through a
// circuit relay. (With unlimited relays Stat().Limited is false, so the
// address is the reliable sign.)
func isRelayed(addr ma.Multiaddr) bool {
	for _, p := range addr.Protocols() {
		if p.Code == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// transportOf names the transport of a multiaddr: "quic", "tcp" or "other".
func transportOf(addr ma.Multiaddr) string {
	for _, p := range addr.Protocols() {
		switch p.Code {
		case ma.P_QUIC_V1, ma.P_QUIC:
			return "quic"
		case ma.P_TCP:
			return "tcp"
		}
	}
	return "other"
}

func isLoopback(a ma.Multiaddr) bool { return manet.IsIPLoopback(a) }
func isPrivate(a ma.Multiaddr) bool  { return manet.IsPrivateAddr(a) }

// Muxer is libp2p's yamux with frames of up to 1 MiB instead of 64 KiB
// (the benchmarks' bare libp2p baseline uses it too). With tlsbatch a frame
// is one write system call, so a bulk transfer makes a sixteenth of the
// calls and wakes the reading stream a sixteenth as often. Measured with
// interleaved 1 GiB blob fetches between two meshd: 703 against 671 MB/s for
// 256 KiB frames against 64 KiB (7 pairs), then 710 against 651 MB/s and
// 264 against 298 cs of CPU for 1 MiB against 256 KiB (4 and 5 runs). The
// frame length is not negotiated: yamux sends at most the peer's window
// (256 KiB at first, growing as the stream is read), and takes any frame
// that fits its own window, so peers with the default interoperate.
func Muxer() *yamux.Transport {
	t := *yamux.DefaultTransport
	t.MaxMessageSize = MaxFrameSize
	return &t
}

// MaxFrameSize is the largest yamux frame meshd sends.
const MaxFrameSize = 1 << 20
