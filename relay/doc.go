// Package relay is Meshwork's relay server: a libp2p host that lets devices
// behind NAT reach each other, deployed on a VPS as cmd/meshrelay.
//
// A Server runs, on one long-lived identity (a stable peer ID, hence a
// stable relay address):
//
//   - the circuit relay v2 service (libp2p's circuitv2/relay) behind an
//     ACL, with configurable per-connection limits (Limits; by default
//     16 GiB each way and 12 hours, enough for a whole sync session,
//     instead of libp2p's 128 KiB and 2 minutes);
//   - the membership proof protocol below, by which a device proves that
//     it belongs to an allowed mesh;
//   - identify and the AutoNAT v1 and v2 services, so nodes learn their
//     public addresses and whether those are reachable;
//   - a server of Meshwork's own Kademlia DHT (DHTProtocolPrefix, never the
//     public IPFS DHT), so it bootstraps nodes' peer routing;
//   - Prometheus metrics on a private registry (reservations, circuits,
//     bytes relayed, refusals) when Config.MetricsAddr is set.
//
// # Access control
//
// A peer may reserve a slot only when the relay is open (Config.Open, which
// must be asked for), or the peer's device ID is in Config.AllowDevices, or
// the peer has proved, on its current connection, that it is a member of a
// mesh in Config.AllowMeshes. A circuit needs its destination to be allowed
// (re-checked per circuit, so revocations apply); its source need not be,
// because a device redeeming an invite is not a member yet and reaches the
// inviter through the circuit address its code carries (the destination
// serves a non-member only the invite protocol). A
// proof is remembered in memory, keyed by peer ID, until the peer's last
// connection to the relay closes; it is re-checked on every reservation and
// circuit against the newest membership log the relay has seen for the
// mesh (logs presented by members are merged), so a revocation learnt from
// any member applies at once.
//
// The DHT answers only the same peers, and the relay's DHT peers
// (Config.DHTBootstrapPeers): a FIND_NODE answer carries the target's
// addresses from the relay's peerstore, so a stranger could otherwise look
// up any connected member. A stranger's DHT stream is reset before a byte is
// read; strangers never enter the relay's routing table nor are asked by its
// queries (dhtacl.go). A member that proves membership after connecting is
// served from its next stream on.
//
// # Membership proof protocol
//
// Protocol ID "/meshwork/relay-auth/1.0.0" (AuthProtocolID). It is open to
// every peer. The libp2p connection already authenticates the peer ID; the
// log shows that this peer ID is a member. One exchange per stream:
//
//	client → relay:  uvarint N, then N bytes: identity Log.Encode()
//	                 (1 ≤ N ≤ MaxLogSize, 4 MiB by default); then CloseWrite
//	relay → client:  1 byte Status, uvarint M, then M bytes UTF-8 message
//	                 (M ≤ 256; human-readable, not for programs)
//
// The relay decodes the log with identity.DecodeLog (which verifies every
// entry's signature and author), checks that its mesh ID is allowed,
// merges it into the relay's copy of that mesh's log, and checks that the
// stream's remote peer is a current member. Status values:
//
//	0 ok                the peer may reserve and open circuits
//	1 malformed         the framing was invalid
//	2 too_large         N exceeds the relay's bound
//	3 invalid_log       DecodeLog rejected the log (bad signature, ...)
//	4 mesh_not_allowed  the mesh is not in the relay's ACL
//	5 not_member        the peer is not, or no longer, a member
//	6 conflict          the log cannot be merged with the relay's copy
//	7 busy              too many proofs in progress; retry later
//
// A uvarint is an unsigned varint (LEB128, as multiformats'
// unsigned-varint) in its minimal encoding; decoders reject longer ones, so
// each message has exactly one encoding. Unknown statuses are refusals.
// Authenticate is the client side.
//
// Version history:
//
//	1.0.0  first version.
//
// # What this package must never do
//
// It must not import node/ (a test enforces it): a relay never syncs,
// stores or reads mesh data; it only sees membership logs, which are
// signed and public to the mesh's devices. It must not relay for peers
// outside its ACL unless Open is set, nor join the public IPFS DHT, nor
// use a private network key (that disables QUIC). It keeps no state on
// disk besides its key (written by the caller).
package relay
