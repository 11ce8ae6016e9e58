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
//     (package vault; served only with --role storage, see "Storage peer")
//   - /meshwork/folder-wait/1.0.0 ask a member to index its copy of a folder
//     now, before 'mesh folder wait' syncs with it (insync.go). Request:
//     frame type 1, uvarint length + folder object ID (frame at most 256
//     bytes). Reply: frame type 2, one code byte (0 indexed, 1 not synced
//     there, 2 refused: no role in the folder, 3 scan failed) + uvarint
//     length + message (at most 512 bytes). The server answers after a full
//     scan of its copy, within 2 minutes. Frames as in node/internal/wire.
//
// A new protocol gets its own file here (as insync.go holds folder-wait):
// its ID (/meshwork/NAME/1.0.0), its frames documented beside the code and
// built with node/internal/wire, a fuzzed decoder, a line above, and its
// handler registered in registerProtocols (node.go) with n.handle, which
// refuses non-members.
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
//
// # Parts and call order
//
// Node (node.go) holds the parts of the daemon core and wires them: New
// builds them in order (store, the registries and queues, gater, objects
// part, membership, relays, host, puncher, blobs, sync engine (which
// openSync hands to the objects part), rounds, storage client, tunnels),
// serve (node.go) starts their loops as Run's tasks and Run and Close
// (shutdown.go, node.go) stop them. Each part owns the state listed and
// the lock that guards it; no other code touches that state except where
// an exception says so.
//
//   - presence (live.go): last-seen times, the viewers of folders, the
//     start time and liveLoop's wake-up; presence.mu, a leaf. It calls
//     nothing; Node writes the presence object itself (writePresence).
//   - folderSet (folderset.go): the running folders (localFolder,
//     folders.go) and their goroutines; folderSet.mu, a leaf, and addMu,
//     which serialises adding a folder and is held across disk and network
//     work (mu may be taken under it). A folder's scan holds the folder's
//     lock and then takes folderSet.mu (folderNews), never the reverse.
//   - tunnels registry, tunnelSet (tunnels.go): the tunnel server and
//     client (package node/tunnel) and the open client-side forwards and
//     their IDs; tunnelSet.mu, a leaf. Its API to Node: expose, unexpose,
//     services, open, list, closeForward, disconnect (a revoked device's
//     tunnels, dropRevoked) and close; disconnect and close accept a nil
//     set (before New built it). Node wires the server's auth (blobAuth)
//     and news (openTunnels) and keeps the exposed services' records in
//     the store (Expose, Unexpose); OpenTunnel, Tunnels and CloseTunnel
//     resolve the device and delegate.
//   - storage client, storageClient (storage.go, storage_sync.go,
//     storage_upload.go, storage_fetch.go, storage_api.go): both sides of
//     the storage peer. It owns storageState: the vault server (storage
//     role) or client, the storage peers seen, what was pushed and merged,
//     what each folder holds there, the cached manifests; storageState.mu,
//     a leaf, and syncMu and uploadMu (one record exchange, one upload at a
//     time, held across network work). It owns the mesh content key
//     (meshKey, createMeshKey, inviteCode, takeMeshKey, keepMeshKey, in
//     badger) and its loop (loop and uploadLoop, Run's task "storage").
//     Its API to Node: isStoragePeer, storagePeers, storagePeerAddrsLocked
//     (under memberState.mu), kick, round (records, and content with
//     upload), folderInfo, status, vaultManifest and fetchFromVault (for
//     fetcher), vaultHandler; isStoragePeer, kick and folderInfo accept a
//     nil client (before New built it). It calls the host, the db, the
//     engine (storageObjects: Objects, Object, View, Change), the blob
//     store, folderSet.list and memberState (isMember, isMeshAdmin), and
//     Node only through the three funcs openStorage gives it:
//     ensureShared (ensureSharedObjects), merged (onSyncChange) and
//     deviceName; none of them under storageState.mu.
//   - mesh objects, objectSet (objects.go, news.go): the lists, todo and
//     notes objects of the catalog ("object/NAME", objectDef in defs.go),
//     the news stream, the views (devices, presence, membership), their
//     feeds and item edits. The items are the engine's replicas, under the
//     engine's locks; the part owns the news stream's waiters (newsWake,
//     newsWaiter.mu, a leaf). Its API to Node: defs (syncRoles),
//     ensureReplicas (rolesLoop), nameOf (publishObjectChange), news (every
//     news writer: folders, folder errors, restores, Revoke, tunnels, the
//     invite host, puncher), newsMerged (onSyncChange), and behind the
//     exported Node methods, which are one-line delegations: list
//     (Objects), create, feed, feedWritable, mergeFeed, objectItems,
//     itemsWritable, putItem, deleteItem, resolveItem, newsList (News),
//     newsChanged. news, before openSync gave it the engine, only logs. It
//     calls the engine (objectEngine: Object, ObjectConfig, Add, View,
//     Change, Update, Delete, Resolve), memberState.current, folderSet.find
//     (and the folder's queueAll after a merged feed), and Node only
//     through the five funcs New gives it: catalog, devices (deviceList),
//     presenceItems, deviceName (deviceNameS) and kickRoles (a
//     non-blocking send); none of them under newsWaiter.mu. news takes the
//     engine's lock, then (not under it) newsWaiter.mu, nothing else: it
//     may be called under a folder's lock (folderNews), never under
//     memberState.mu (see Revoke below).
//   - membership, memberState (memberstate.go; used by node.go,
//     membership.go, discovery.go, invite.go, storage.go): the membership
//     log, each member's dial backoff and members' signed address records;
//     memberState.mu, one lock for the three (keepRecord reads the log).
//     Not a leaf: the func given to update runs under it and calls other
//     parts (commitLocked, the storage client), so that a change of the
//     log and its effects are one step.
//   - changeQueue (changequeue.go): object changes waiting for changeLoop
//     (live.go); changeQueue.mu, a leaf. push never blocks, so it may be
//     called under any lock.
//   - roundBook (rounds.go): when each member's last sync round started,
//     and the rounds wanted and running; roundBook.mu, a leaf (nothing is
//     called under it). It runs a round with each member that connects
//     (kick, from onConnected; loop, Run's task "rounds"; connect). Its API
//     to Node: kick, loop, record (wait's rounds), last and caughtUp (the
//     in-sync rule, insync.go). It reads the host's network (Connectedness,
//     ConnsToPeer) and calls out only through the three funcs New gives it:
//     isMember (memberState), the engine's Sync and pushState.
//   - exchange engine, n.sync (package syncproto/exchange; wired in
//     sync.go by openSync): the replicas and the sync sessions, under the
//     engine's own locks. It calls back into Node through its Config:
//     memberGate.IsMember (memberState.mu, then storageState.mu), OnChange and
//     OnLocalChange (onSyncChange, changeQueue.push), Validate
//     (catalogrules.go) and FormerWriter (former.go).
//   - blob transfer (blobs.go): the content store blobStore (blobs/store)
//     and the transfer service blobSvc (blobs/transfer), under their own
//     locks; they call back through blobAuth (IsMember, blobStore.Holders).
//   - host (host.go), gater (gate.go), relays (relaySet, relays.go) and
//     puncher (punch.go): the libp2p host and hole-punch service; the
//     gater holds only a func, isRevoked (memberState.mu), that the swarm calls;
//     relaySet.mu (a leaf) guards the relays' circuit addresses, which the
//     host's address factory reads; puncher.newsMu guards its news
//     throttle, its counters are atomic. The puncher holds the host and
//     the funcs New gives it (punchHooks: isMember, ready, deviceName,
//     event, news), no *Node; none of them is called under newsMu.
//   - staleConns (staleconn.go): the members that connected anew, whose
//     older connections it probes (a ping on that connection) and closes
//     when dead; staleConns.mu, a leaf. It holds the host only; Node
//     tells it of a member's new connection (onConnected), and its loop
//     is Run's task "stale-conns".
//   - leaves: eventHub (events.go, the live event ring), storeHealth
//     (storehealth.go), formerHolder (former.go, an atomic pointer),
//     stopState (shutdown.go).
//
// The order: node.go and shutdown.go wire the parts; the exported methods
// of Node (the core's API, which node/localapi consumes) and Node's loops
// call the parts; a part calls downward only, into its own state, leaves
// and lower packages, never into Node, another part or node/localapi. No
// file of package node imports node/localapi (TestCoreNeverImportsAPI,
// node/localapi/fence_test.go, checks go list -deps ./node). Lower packages
// (exchange, transfer, tunnel, vault, folder, mdns) call back into Node only
// through the small adapters that hold the *Node and implement the
// interfaces those packages declare: memberGate (sync.go), blobAuth
// (blobs.go), feedAdapter and fetcher (folders.go, storage_fetch.go: a
// folder's changes reach the engine and folderNews, its fetches the blob
// service and then the storage client), nodeInviteHost (invite.go),
// mdnsNotifee (discovery.go), and the vault's SetAdmin
// (memberState.isMeshAdmin, memberstate.go).
//
// Lock order, outer first: folderSet.addMu, folderSet.mu; a folder's lock,
// folderSet.mu; memberState.mu, storageState.mu (NewInvite lists storage
// peers under memberState.mu); the engine's lock, memberState.mu
// (memberGate), never the reverse (see Revoke below). memberState.mu
// is held across work that calls other parts (inside memberState.update):
// commitLocked writes the store and wakes the push, dial, roles and relay
// loops (non-blocking sends), and NewInvite lists the host's connections.
//
// Known exceptions, where the code breaks the order today:
//   - the storage client calls up into Node through its three funcs
//     (ensureShared, merged, deviceName; storage.go) and reads two other
//     parts, folderSet and memberState, directly.
//   - the objects part calls up into Node through its five funcs
//     (catalog, devices, presenceItems, deviceName, kickRoles; objects.go),
//     and devices and presenceItems read most other parts; it reads
//     memberState and folderSet directly.
//   - roundBook calls up into Node through its func push (pushState,
//     membership.go: a round opens with the membership exchange).
//
// Revoke (node.go) writes its news after memberState's lock is released:
// news calls the engine (Update takes the engine's lock), and the engine's
// recheckPeers holds its lock while it asks memberGate.IsMember, which
// takes memberState.mu; under the members' lock the two orders were
// opposite, a deadlock when a revoke met a recheck.
//
// # Storage peer
//
// A storage peer (meshd --role storage) is a member of the mesh that keeps
// no working tree and never takes part in the plaintext sync of mesh
// objects: it registers /meshwork/vault/1.0.0 (package node/vault) and
// refuses /meshwork/sync/1.0.0 to everyone, and devices leave it out of
// their sync engine, of blob swarms and of folder catch-ups. Devices
// recognise a storage peer by the vault protocol in its identify record:
// that is the storage peer's own promise to hold only ciphertext, which
// devices honour; a device never sends it plaintext.
//
// # Storage peer keys: one mesh content key, distributed in invite codes
//
// The device that creates a mesh (mesh init) draws a 32-byte mesh content
// key (a crypt.FolderKey), kept in badger under node/meshkey. Every invite
// code made with 'mesh invite' carries it after the code proper:
// "meshinv1…-mk1…" (format and checksum at meshKeyPrefix). The code travels out of band (copied by the
// user) and its secret parts never cross the wire, so a device joining
// through a storage peer, with every other device offline, still gets the
// key, and the storage peer (which redeems the invite) never sees it.
// 'mesh invite --storage' makes a code without it, for a storage peer; a
// storage peer refuses a code that carries a key and never stores one.
// Why not a key handed over by an owner device after joining: a device that
// joins while only the storage peer is online must read the folder at once,
// and the code is the only secret channel it has. Why one mesh key rather
// than a random key per folder: the same reason (a per-folder key would
// need an owner online, or a key record sealed to the mesh key anyway).
// The cost: every device of the mesh can read every folder's copy on the
// storage peer, regardless of folder roles ('none' included); a leaked
// invite code leaks the key (it already let its holder join and read
// everything). Revoking a device does not rotate the key (not yet built).
//
// Per object (a folder, the catalog, the news stream), the key that seals
// it is
//
//	objectKey = BLAKE3-derive("meshwork storage v1 object key", meshKey || objectID)
//
// and package blobs/crypt does the rest with it (its doc.go has the chunk,
// manifest and record formats and what a storage peer learns from them).
//
// # What devices store on the storage peer
//
//   - For every object O a device holds, one record "obj/O/DEVICE": all of
//     O's items (syncproto.EncodeItem, each with a uvarint length), sealed
//     with crypt.SealRecord(objectKey, ad = the record name). A device only
//     writes its own record; it merges every other device's record into its
//     replica (FeedSync merge, as for a peer's changes), so devices that are
//     never online together converge through the storage peer.
//   - For every file whose content it has: its chunks sealed with
//     crypt.SealChunk(objectKey of the folder) (convergent: equal chunks
//     of a folder are stored once), and its sealed manifest (crypt.SealManifest)
//     under "man/" + hex(BLAKE3-keyed(BLAKE3-derive("meshwork storage v1
//     manifest name", objectKey), blob ref text)), a name the storage peer
//     cannot link to a plaintext blob reference.
//
// Besides what blobs/crypt lists (sizes, counts, chunk equality within a
// folder, access patterns), the storage peer sees the record names: object
// IDs (random "folder-<hex>", plus the catalog's and the news stream's
// fixed IDs, so the number of folders), which device writes which object's
// record and when, and how large each record is. Manifest record names are
// keyed hashes of blob references: unlinkable to a plaintext blob.
//
// Devices push and merge records every 2 seconds while a storage peer is
// online, upload content when a folder changed (else every 30 s), and do
// both at once in 'mesh wait', 'mesh folder join' (records) and 'mesh fetch'
// (records). An object's record is its whole item list, re-sent when it
// changes: fine for folders of up to about 100,000 items (vault.MaxRecord).
//
// # Storage peer quota policy: newest first
//
// The storage peer counts only sealed chunk bytes against its quota; object
// records (all the metadata: every name, size and version) are always kept.
// It refuses a chunk that does not fit. Devices upload files newest first
// (by modification time, across all their folders); a file that does not
// fit makes room by deleting the manifests of strictly older files the
// storage peer holds, oldest first (the storage peer deletes the chunks no
// remaining manifest lists), and is skipped if that is not enough, so a
// full storage peer holds the newest files that fit, whole. The storage
// peer deletes a manifest only for the device that uploaded it (it notes
// the uploader) or a mesh owner or admin, so a device makes room only
// with the manifests it may delete (its own, or any if it is an admin),
// and a member cannot wipe what others stored. A device only
// drops files of folders it syncs. The content of files no longer in any of
// its folders (deleted or replaced) that it uploaded itself (noted in badger
// under node/storage/uploaded/) is dropped first; until room is needed it
// stays, a backup of old versions.
//
// # Reading from the storage peer
//
// A device fetches a blob from its online members first (the normal path);
// if none is online or they fail, from a storage peer: the sealed manifest
// (opened, its plaintext reference checked) and each missing sealed chunk
// (checked by ciphertext hash, opened, checked by plaintext hash) into the
// same partial file.
package node
