package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Errors a caller can test with errors.Is.
var (
	ErrRefused     = errors.New("refused")              // not a member or not allowed
	ErrNotFound    = errors.New("no such service")      // not exposed on the device
	ErrUnavailable = errors.New("service unavailable")  // exposed, but its address refused
	ErrBadRequest  = errors.New("bad request")          // the device did not understand us
	ErrInvalidName = errors.New("invalid service name") // Expose, Dial
	ErrInvalidAddr = errors.New("invalid address")      // Expose, Listen
	ErrNotExposed  = errors.New("not exposed")          // Unexpose
	ErrClosed      = errors.New("closed")               // use after Close
)

// handshakeTimeout bounds the request/reply exchange on a new stream when the
// caller's context has no earlier deadline.
const handshakeTimeout = 30 * time.Second

// Conn is one tunnel connection: a libp2p stream to the serving device,
// already past the handshake, carrying the bytes of one TCP connection to
// the exposed service. It is a net.Conn with half-close (CloseWrite).
type Conn struct {
	network.Stream
}

var _ net.Conn = (*Conn)(nil)

// LocalAddr returns this device's address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr {
	return Addr{Peer: c.Stream.Conn().LocalPeer(), Multiaddr: c.Stream.Conn().LocalMultiaddr()}
}

// RemoteAddr returns the serving device's address of the underlying connection.
func (c *Conn) RemoteAddr() net.Addr {
	return Addr{Peer: c.Stream.Conn().RemotePeer(), Multiaddr: c.Stream.Conn().RemoteMultiaddr()}
}

// Relayed reports whether the connection runs through a relay.
func (c *Conn) Relayed() bool { return isRelayed(c.Stream.Conn()) }

// Addr is the net.Addr of a tunnel endpoint: a device and the multiaddr of
// the libp2p connection the stream runs on.
type Addr struct {
	Peer      peer.ID
	Multiaddr ma.Multiaddr
}

// Network returns "libp2p".
func (Addr) Network() string { return "libp2p" }

func (a Addr) String() string {
	if a.Multiaddr == nil {
		return "/p2p/" + a.Peer.String()
	}
	return a.Multiaddr.String() + "/p2p/" + a.Peer.String()
}

// isRelayed reports whether c runs through a circuit relay. A relay with
// unlimited circuits reports Stat().Limited false, so the address decides.
func isRelayed(c network.Conn) bool {
	if c.Stat().Limited {
		return true
	}
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Dial opens a tunnel connection to the service exposed under name on
// device and returns once the device has connected to the service. It works
// over a relayed connection when no direct one exists; a direct connection
// is preferred when both exist (see the package documentation).
//
// Errors from the device wrap ErrRefused, ErrNotFound, ErrUnavailable or
// ErrBadRequest.
func Dial(ctx context.Context, h host.Host, device peer.ID, service string) (*Conn, error) {
	if err := checkName(service); err != nil {
		return nil, fmt.Errorf("tunnel to %s: %w", device, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
	}
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "meshwork tunnel"), device, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("tunnel to %s service %q: open stream: %w", device, service, err)
	}
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	// Unblock the handshake if ctx ends before its deadline.
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()

	status, reason, err := handshake(st, service)
	if err != nil {
		_ = st.Reset()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("tunnel to %s service %q: %w", device, service, err)
	}
	if status != StatusOK {
		_ = st.Close()
		return nil, fmt.Errorf("tunnel to %s service %q: %w", device, service, statusError(status, reason))
	}
	if !stop() {
		_ = st.Reset()
		return nil, fmt.Errorf("tunnel to %s service %q: %w", device, service, ctx.Err())
	}
	_ = st.SetDeadline(time.Time{})
	return &Conn{Stream: st}, nil
}

func handshake(st network.Stream, service string) (Status, string, error) {
	if _, err := st.Write(appendRequest(nil, service)); err != nil {
		return 0, "", fmt.Errorf("send request: %w", err)
	}
	return readReply(st)
}

func statusError(st Status, reason string) error {
	var base error
	switch st {
	case StatusRefused:
		base = ErrRefused
	case StatusNotFound:
		base = ErrNotFound
	case StatusUnavailable:
		base = ErrUnavailable
	case StatusBadRequest:
		base = ErrBadRequest
	default:
		base = fmt.Errorf("unknown reply %s", st)
	}
	if reason == "" {
		return base
	}
	return fmt.Errorf("%w: %s", base, reason)
}
