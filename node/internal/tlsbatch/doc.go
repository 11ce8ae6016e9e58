// Package tlsbatch is libp2p's TLS 1.3 security transport (/tls/1.0.0) with
// the records of each write sent in one system call and the connection read
// through a large buffer.
//
// crypto/tls seals at most 16 KiB per record and writes every record to the
// socket by itself: a 1 GiB blob transfer over libp2p's TLS made 67,000
// write calls on the sender, one per record, and about as many reads and
// poller wake-ups on the receiver. Here the TCP connection beneath TLS is
// wrapped: while a Write of the secured connection is in progress the records
// it produces are gathered and written together when it returns (one call per
// yamux frame), and reads fill a 256 KiB buffer so that one call brings in
// many records.
//
// The bytes on the wire are exactly libp2p's TLS: the handshake, the
// certificate extension that binds the libp2p key, ALPN muxer selection and
// the peer checks are libp2p's own code (p2p/security/tls), which this
// package calls. A peer running plain libp2p TLS interoperates (tested).
//
// It must never reorder, drop or hold back bytes: records gathered during a
// write are sent before that write returns, and anything else written to
// the connection while records are gathered (an alert or a key update sent
// by the TLS reader) is queued behind them, never ahead.
package tlsbatch
