// Package node is the Meshwork daemon's core: one device's libp2p host, its
// view of the mesh's membership, discovery of the other members, folders,
// objects, tunnels and the storage client. Its local API (the control
// socket the mesh CLI talks to, and the HTTP API) is package node/localapi.
//
// A Node is built with New(cfg, logger) and runs with Run(ctx, services...);
// Run returns after every goroutine it started has exited and the host is
// closed.
//
// # Protocols
//
// Every Meshwork protocol ID starts with /meshwork/. Streams of those
// protocols are accepted only from current, non-revoked members of this
// device's mesh, with one exception: /meshwork/invite/1.0.0, which is how a
// device that is not yet a member joins. A revoked device is refused at the
// connection gater: it cannot even complete a secured connection. Standard
// libp2p protocols (identify, ping) stay open to anyone so that a stranger
// can tell a Meshwork node is there but learns nothing else.
//
//   - /meshwork/invite/1.0.0     join a mesh with an invite (invite.go)
//   - /meshwork/membership/1.0.0 push the signed membership log and signed
//     address records of members (membership.go)
//   - /meshwork/vault/1.0.0      a storage peer's sealed records and chunks
//     (package vault; served only with --role storage, see storage.go)
//   - /meshwork/folder-wait/1.0.0 ask a member to index its copy of a folder
//     now, before 'mesh folder wait' syncs with it (insync.go). Request:
//     frame type 1, uvarint length + folder object ID (frame at most 256
//     bytes). Reply: frame type 2, one code byte (0 indexed, 1 not synced
//     there, 2 refused: no role in the folder, 3 scan failed) + uvarint
//     length + message (at most 512 bytes). The server answers after a full
//     scan of its copy, within 2 minutes. Frames as in node/internal/wire.
//
// # What it must never do
//
// It must never serve a /meshwork/ protocol other than invite to a non-member,
// never accept a membership entry it has not verified (identity.DecodeLog
// verifies every signature and authority), and never write the device key
// with permissions wider than 0600. It must never send a storage peer
// plaintext (no mesh object, plaintext chunk or plaintext blob reference),
// and a storage peer must never hold the mesh content key.
//
// # Local API, and who calls whom
//
// The CLI talks to the daemon over HTTP+JSON on a Unix socket inside the
// home directory (mode 0600); node/localapi serves it and the HTTP API,
// and documents the routes (node/API.md is the HTTP API's reference).
//
// The calls go one way: cmd/meshd → node/localapi → node → node/folder,
// node/tunnel, node/vault, syncproto, blobs, identity. node/localapi calls
// exported methods of Node (Status, Devices, Folders, ShareFolder,
// PutFolderFile, MergeFeed, OpenTunnel, Events, ...) through small
// interfaces it declares beside its handlers; package node never imports
// node/localapi, knows nothing of HTTP, and never starts an API itself:
// cmd/meshd opens it (localapi.Listen) and hands its Serve to Run, which
// runs it as one of its tasks, so it stops with the others within
// ShutdownBudget. Those methods report what failed as kinds the API maps
// to status codes (ErrNoMesh, ErrNotFound, ErrInvalid, ErrForbidden, ...,
// errkinds.go); the JSON types of the answers (Status, FolderInfo,
// WaitResult, ...) are declared here, as the CLI and the tests decode them.
//
// Where things go: a new HTTP route in node/localapi/routes.go, its
// handler in the localapi file of its concept and its logic in an exported
// Node method here; a new wire protocol in a file of its own here (its
// protocol ID and frames in this comment, registered in registerProtocols,
// node.go); a new folder mode in node/folder/mode.go (folder.Mode), and
// what the daemon does with it in modes.go here.
package node
