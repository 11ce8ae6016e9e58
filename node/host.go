package node

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// resourceLimits are the explicit limits of the resource manager. A personal
// mesh has few peers, so connection counts are modest; streams and memory
// are generous enough for parallel chunk transfers and tunnels.
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
		PeerDefault: rcmgr.ResourceLimits{
			Conns:           16,
			ConnsInbound:    8,
			ConnsOutbound:   8,
			Streams:         2048,
			StreamsInbound:  1024,
			StreamsOutbound: 1024,
			Memory:          512 << 20,
		},
	}
	return partial.Build(scaling.AutoScale())
}

// newHost builds the libp2p host: QUIC-v1 and TCP, Noise and TLS, yamux,
// the resource manager with explicit limits, identify and ping (on by
// default), hole punching and the relay client.
func newHost(key crypto.PrivKey, listen []string, g *gater, relays []peer.AddrInfo) (host.Host, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits()))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(g),
		libp2p.EnableHolePunching(),
		libp2p.EnableRelay(),
		libp2p.Ping(true),
	}
	if len(relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, err
	}
	return h, nil
}

// listenWithFallback tries the default port and falls back to an
// OS-chosen one when 4001 is taken.
func listenWithFallback(key crypto.PrivKey, listen []string, g *gater, relays []peer.AddrInfo) (host.Host, bool, error) {
	if len(listen) > 0 {
		h, err := newHost(key, listen, g, relays)
		if err != nil {
			return nil, false, fmt.Errorf("listen on %s: %w", strings.Join(listen, ", "), err)
		}
		return h, false, nil
	}
	h, err := newHost(key, DefaultListenAddrs(DefaultPort), g, relays)
	if err == nil {
		return h, false, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return nil, false, fmt.Errorf("listen on port %d: %w", DefaultPort, err)
	}
	h, err = newHost(key, DefaultListenAddrs(0), g, relays)
	if err != nil {
		return nil, false, fmt.Errorf("listen on an OS-chosen port: %w", err)
	}
	return h, true, nil
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
