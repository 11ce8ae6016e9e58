// Package identity is who is who in a mesh: device keys, mesh IDs, the
// signed membership log that says which devices belong to a mesh and with
// which role, and the invites that let new devices join.
//
// # What it must never do
//
// It never does I/O other than reading and writing the device key file,
// never talks to the network, and never keeps global state: node/ and
// relay/ move encoded logs and invite grants around and call in here to
// verify them. It never trusts bytes it did not verify: DecodeLog and
// Merge check every signature, every author's authority and every parent
// reference before a Log exists. It never puts an invite secret on the
// wire or in the log: only the signed grant, a challenge and a proof of
// possession do.
//
// # Devices and meshes
//
// A device is an Ed25519 libp2p key (LoadOrCreateKey writes it 0600,
// atomically); its ID is the libp2p peer ID, which inlines the public key,
// so every signature can be checked from the ID alone. Other key types are
// refused: Ed25519 signatures are not malleable, so entry IDs are not
// either. A mesh is created by its first device (NewMesh): its MeshID is
// the hash of the genesis entry, text form "mesh" + base32.
//
// # The membership log
//
// The log is an append-only DAG of signed entries: genesis (the creator
// is owner), add (an owner or admin adds a device), redeem (any member
// adds a device on the authority of an invite), set-role and revoke. Each
// entry names as parents the heads of its author's log, so it records
// what its author had seen: its causal past. An EntryID is the SHA-256 of
// the entry's signed encoding.
//
// Authority. An entry is valid only if its author signed it and, in the
// state computed from its causal past, the author is a non-revoked owner
// or admin; a redeem entry needs instead a non-revoked member as author
// and a grant signed by a non-revoked owner or admin, unexpired at the
// entry's time, never redeemed in the causal past, with a valid proof. A
// role can only be granted (by add, invite or set-role) by a device of at
// least that role: only owners make owners, and only owners may change an
// owner's role or revoke an owner. No device may change its own role or
// revoke itself, so the last owner cannot disappear by its own hand. A
// revoked device can never be re-added: it needs a new key. A log with an
// invalid entry is refused as a whole (DecodeLog, Merge).
//
// # Merge and concurrency rules
//
// The state (Members) is a function of the set of entries only, so logs
// that hold the same entries agree, whatever order they were merged in:
//
//  1. Entries are applied in a deterministic topological order: parents
//     first, ties broken by the smaller EntryID bytes. Encode writes this
//     order; the order of a causally closed subset is this order
//     restricted to the subset.
//  2. An entry takes effect only if it is also authorised in the state
//     built so far in that order; otherwise it is ignored (it stays in the
//     log). So a concurrent demotion or revocation may cancel an action;
//     of two owners demoting each other concurrently, one stays owner.
//  3. Revocation is permanent and retroactive against the unseen: once a
//     revocation of device X takes effect, every entry whose author is X,
//     and every redemption of an invite X signed, is ignored unless it is
//     an ancestor of that revocation. A revoked admin cannot keep acting by
//     pretending not to have seen its revocation. (Computed by restarting
//     the pass when a revocation takes effect after such an entry; bans
//     only grow, so this ends.) Concurrent revocations of X all count.
//  4. Concurrent role changes of one device: the later one in the order
//     wins.
//  5. An invite (InviteID = SHA-256 of its public key) adds a device at
//     most once: the first redemption in the order uses it up, even if it
//     is itself ignored; later ones are ignored. Log.Redeem refuses
//     (ErrInviteUsed) if the log holds any redemption of the invite.
//  6. Concurrent adds of one device: the first in the order wins.
//
// Merge(other) adds the entries l lacks and re-verifies the result; it is
// idempotent and commutative. Checking an entry against its causal past
// is incremental along chains and recomputed at merge points, so verifying
// a log costs O(n) plus O(n) per merge entry.
//
// # Invites
//
// Log.NewInvite makes a fresh Ed25519 key pair whose seed is the
// single-use secret, and an InviteGrant (mesh, inviter, addresses, role,
// expiry, public key, redeemers) signed by the inviter's device key.
// Invite.Code is the grant plus the seed, for a human to carry. The grant
// names the members allowed to redeem it (by default the inviter alone;
// node names the storage peer instead for a code that must work while the
// inviter is offline), so that two members can never both welcome a device
// with one code: any other member refuses it (ErrNotRedeemer), and a
// redemption entry by an unnamed member is invalid in every log. A version
// 1 grant (from before redeemers were named) is redeemable at its inviter
// only; its redemptions already in a log stay valid whoever made them.
// To join, the joiner connects to a redeemer, which sends a random challenge
// (16 to 64 bytes); the joiner answers with the grant and
// Invite.Prove(joiner, redeemer, name, challenge); the redeemer calls
// Log.Redeem, which appends a redeem entry carrying grant, challenge and
// proof so every device can re-verify it. Expiry is judged at the entry's
// time, which its author claims: a member could backdate a redemption, but
// only with a proof from someone holding the code.
//
// # Wire formats (all version 1; each carries its version)
//
// Log: "MWLOG" 0x01, see logMagic in codec.go. Entry body and signature,
// see entry.body; signatures are over "meshwork/membership/v1\x00" + body.
// Grant: leading version byte 0x02 (0x01 without redeemers, still
// decoded), see grantVersion; signed over
// "meshwork/invite/v1\x00" + grant without its signature. Proof: invite
// key's signature over "meshwork/invite-proof/v1\x00", mesh, joiner,
// redeemer, name and challenge (length-prefixed). Invite code: "meshinv1"
// + base32(grant, seed, 4-byte checksum), see invitePrefix. Text IDs: "mesh"
// + base32 for MeshID, base32 for EntryID and InviteID; base32 is lower
// case, RFC 4648 alphabet, no padding. Decoders refuse non-canonical
// input, so each value has one encoding. Prefixes are permanent; a
// change of format gets a new version.
//
// Version history: 1 — first version. Grant 2 — names its redeemers
// (log and code formats unchanged: a log or code holds either grant).
//
// # Errors
//
// Errors wrap the sentinels of api.go and name the entry (index in the
// input and short ID), invite or device at fault. DecodeLog: forged or
// altered entry → ErrBadSignature; author without authority →
// ErrUnauthorized; missing parent, no genesis, or bytes cut short →
// ErrTruncated; another mesh → ErrWrongMesh; anything else → ErrMalformed.
package identity
