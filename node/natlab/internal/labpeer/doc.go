// Labpeer is a tiny go-libp2p program that the natlab proof tests run inside
// lab network namespaces. It is a test fixture, never shipped.
//
// In relay mode it runs a circuit v2 relay with unlimited relayed
// connections (the defaults reset anything past 128 KiB). In peer mode it
// keeps a reservation on the relay (re-reserving when the relay goes away),
// enables DCUtR hole punching, optionally dials a target peer through the
// relay and keeps that connection up, and optionally finds LAN peers over
// mDNS.
//
// It reports what it sees as JSON lines on stdout, one object per line with
// an "event" field:
//
//	ready      {id, addrs, holepunch}  listening (peer mode: reserved and, if
//	                                   asked, DCUtR registered)
//	reserved   {peer, addr}            reservation accepted by the relay
//	conn       {peer, addr, relayed, dir}
//	disconn    {peer, addr, relayed}
//	direct     {peer, addr, after_ms}  first direct connection to a peer we
//	                                   had a relayed connection to; after_ms
//	                                   is the time since that relayed one
//	hp         {peer, type, success, err, ms}  DCUtR tracer events
//	dial       {peer, addr, err}       outcome of our own dials
//	echo       {peer, addr, relayed, bytes, ms, err}  result of an echo
//	error      {err}
//
// Relayed means the connection's remote multiaddr contains /p2p-circuit
// (with unlimited relay limits Stat().Limited is false, so that field cannot
// tell).
//
// Commands are read from stdin, one per line:
//
//	echo N     send N bytes to the -connect target over a new echo stream
//	           (allowed on limited connections) and report the echo event
//
// SIGTERM and SIGINT close the host gracefully: a killed node leaves stale
// QUIC state on the relay and later circuits fail.
//
// Labpeer never listens on or dials anything but the addresses it is given
// and the lab's own interfaces.
package main
