// Package tunnel is Meshwork's raw communications channel: it carries TCP
// connections to a service exposed on one device of the mesh from a local
// port on another, as libp2p streams on the protocol /meshwork/tunnel/1.0.0.
// The bytes are end-to-end encrypted by the libp2p connection (Noise or
// TLS, or QUIC's TLS), so a relay in between sees only ciphertext.
//
// A Server runs on the serving device: Expose publishes host:port under a
// name, to every member or to listed devices; nothing is reachable until
// then. A Client runs on the other device: Listen accepts local TCP
// connections and forwards each as a new stream (Dial does one by hand). The
// daemon persists exposed services, keeps forwards open and writes the
// Server's events (WithOnOpen) to the news stream; this package persists
// nothing.
//
// This package must never dial a service for a peer that is not a member or
// not on the service's allow list (the checks come first, on every stream),
// and the client must never listen on a non-loopback address unless told to
// (AllowNonLoopback).
//
// # Message flow
//
//	client (Dial)                            server (handler)
//	open stream /meshwork/tunnel/1.0.0 ---->  IsMember(peer)? else REPLY(refused), close
//	REQUEST(version, service)          ---->  service exposed? else REPLY(not found)
//	                                          peer on its allow list? else REPLY(refused)
//	                                          IsMember(peer) again (revocation race)
//	                                          dial service addr (TCP); failure: REPLY(unavailable)
//	                                   <----  REPLY(ok)
//	bytes of the TCP connection        <--->  bytes of the TCP connection
//
// A refusal is written and the stream closed (not reset: a reset could
// overtake the reply); no TCP connection to the service is made. The client
// waits for the reply before forwarding any byte, so a refused connection
// has sent nothing past the request. Once connected, each direction ends
// independently: the end of one side's input becomes a half-close (TCP FIN
// / stream CloseWrite) on the other side, so a client that shuts down its
// write side still receives the whole answer. An error on either side
// (reset, RST, a closed libp2p connection) resets the stream and closes the
// TCP connection with a RST (SO_LINGER 0), so both ends learn of it. When
// both directions have ended cleanly, both sides are closed.
//
// # Wire format (version 1)
//
//	REQUEST  version u8 (= 1)
//	         name length uvarint, 1..64; name bytes: [a-z0-9][a-z0-9._-]*
//	REPLY    status u8
//	         reason length uvarint, 0..127; reason bytes (UTF-8, for people)
//
// With these bounds each uvarint is a single byte (< 0x80); a reader refuses
// a length byte with the continuation bit set, so there is one encoding per
// message. Statuses: 0 ok, 1 refused (not a member, not allowed), 2 not
// found, 3 unavailable (the service's address refused), 4 bad request
// (malformed, or a request version the server does not speak); a client
// treats any other value as a failure. A server answers a request version
// it does not know with status 4 and says which version it got.
//
// # Paths: direct before relayed
//
// Every tunnelled connection opens its own stream with host.NewStream, under
// network.WithAllowLimitedConn so that a relayed (limited) connection may
// carry it. In go-libp2p v0.51.0, Swarm.NewStream takes bestConnToPeer,
// which ranks an unlimited connection above a limited one, then a direct
// connection (transport not a proxy) above a relayed one, then the one with
// more streams. So once hole punching has produced a direct connection, new
// tunnel connections use it; connections already open stay on the relay
// until they end. TestNewConnectionsPreferDirect checks this.
//
// # Back-pressure
//
// Each connection has two copy loops, one per direction, each with one
// 256 KiB buffer: a loop reads at most that much, then blocks writing it
// until the other side accepts it. Nothing is queued beyond that buffer in
// this package. Below it, the kernel's socket buffers and yamux's per-stream
// receive window (at most 16 MiB in go-libp2p, reserved through the
// resource manager) bound what is in flight: when the local reader of a
// service is slow, the TCP write blocks, the copy loop stops reading the
// stream, the yamux window closes and the sender's Write blocks, and so on
// back to the sending application. QUIC streams have the same flow control.
//
// # Version history
//
//	1.0.0  first version.
package tunnel
