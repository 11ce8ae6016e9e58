package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshwork/meshwork/blobs/store"
	"github.com/meshwork/meshwork/blobs/transfer"
	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/vault"
	"github.com/meshwork/meshwork/syncproto/exchange"
)

// Node is one running device.
type Node struct {
	cfg    Config
	log    *slog.Logger
	clock  func() time.Time // cfg.Now or time.Now, set by New; read through now()
	key    crypto.PrivKey
	id     peer.ID
	db     *badger.DB
	health *storeHealth // the db's run-time health (storehealth.go)
	former formerHolder // until when revoked devices could write (former.go)
	host   host.Host
	gater  *gater
	relays *relaySet
	dht    *dht.IpfsDHT       // nil without relays
	hps    *holepunch.Service // go-libp2p's hole-punch service (host.go)
	punch  *puncher           // hole-punch retries and path changes (punch.go)
	stale  *staleConns        // closes members' connections that died unclosed (staleconn.go)

	blobStore *store.Store
	blobSvc   *transfer.Service
	tun       *tunnelSet
	st        *storageClient // storage peer, both sides (storage.go)

	sync      *exchange.Engine
	objs      *objectSet // lists, notes, news, views, feeds (objects.go)
	rolesKick chan struct{}
	runCtx    context.Context // Run's context, for folders started later
	folders   *folderSet      // the folders synced here (folderset.go)

	members *memberState // the log, dial backoffs, address records (memberstate.go)

	kick      chan struct{} // wakes the redial loop
	pushAll   chan struct{} // membership changed: push to every member
	lastPull  atomic.Int64  // unix ns of the last pullMembership (membership.go)
	closeOnce sync.Once
	closeErr  error
	stop      stopState     // what shutdown is waiting for (shutdown.go)
	ready     chan struct{} // closed once Run serves (shutdown.go)

	// Live events and presence (live.go, events.go).
	events  *eventHub
	live    *presence    // last-seen times, viewers, liveLoop's wake-up (live.go)
	changes *changeQueue // object changes for changeLoop (changequeue.go)
	rounds  *roundBook   // sync rounds with members, for in_sync (rounds.go)
}

// New opens (or creates) the device's home, key and database and builds its
// libp2p host. Call Run to serve and Close (or cancel Run) to stop.
func New(cfg Config, logger *slog.Logger) (*Node, error) {
	if cfg.Home == "" {
		return nil, errors.New("node: empty home directory")
	}
	if err := checkRole(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("create home %q: %w", cfg.Home, err)
	}
	key, created, err := identity.LoadOrCreateKey(KeyPath(cfg.Home))
	if err != nil {
		return nil, fmt.Errorf("device key in %q: %w", cfg.Home, err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("device key in %q: %w", cfg.Home, err)
	}
	logger = logger.With("device", id.ShortString())
	if created {
		logger.Info("created device identity", "id", id.String(), "key", KeyPath(cfg.Home))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	health := newStoreHealth(filepath.Join(cfg.Home, "db"), logger, now)
	db, err := openDB(health.dir, logger, health)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		log:       logger,
		clock:     now,
		key:       key,
		id:        id,
		db:        db,
		health:    health,
		members:   newMemberState(),
		kick:      make(chan struct{}, 1),
		rolesKick: make(chan struct{}, 1),
		folders:   newFolderSet(),
		pushAll:   make(chan struct{}, 1),
		events:    newEventHub(),
		live:      newPresence(now().UTC()),
		changes:   newChangeQueue(),
		ready:     make(chan struct{}),
	}
	n.gater = &gater{isRevoked: n.isRevoked}
	n.objs = &objectSet{
		self: id, members: n.members, folders: n.folders, log: logger, now: n.now,
		catalog:       n.catalog,
		devices:       func() []Device { return n.deviceList(context.Background(), false) },
		presenceItems: n.presenceItems,
		deviceName:    n.deviceNameS,
		kickRoles:     n.kickRoles,
	}
	if err := n.loadMembership(); err != nil {
		db.Close()
		return nil, err
	}
	relays, err := parseRelays(cfg.Relays)
	if err != nil {
		db.Close()
		return nil, err
	}
	n.relays = newRelaySet(relays)
	h, fellBack, err := listenWithFallback(key, cfg.ListenAddrs, n.gater, n.relays.addrs, &n.hps, relays)
	if err != nil {
		db.Close()
		return nil, err
	}
	if fellBack {
		logger.Warn("port in use, listening on an OS-chosen port instead", "port", DefaultPort, "addrs", h.Addrs())
	}
	n.host = h
	n.punch = newPuncher(n.host, n.id, punchHooks{
		isMember:   n.IsMember,
		ready:      n.holePunchReady,
		deviceName: n.deviceName,
		event:      n.events.publish,
		news:       func(kind string, p peer.ID, text string) { n.objs.news(kind, p, text) },
	}, n.hps, logger, now)
	n.stale = newStaleConns(n.host, logger)
	if err := n.openBlobs(); err != nil {
		h.Close()
		db.Close()
		return nil, err
	}
	n.openSync()
	n.rounds = newRoundBook(h.Network(), n.members.isMember, n.sync.Sync, n.pushState, n.log)
	if err := n.openStorage(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.openTunnels(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func parseRelays(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("relay address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("relay address %q: needs a /p2p/ID part: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// now is the time by the node's clock (Config.Now). A Node a test builds
// as a partial literal, without New, has no clock and reads the wall clock.
func (n *Node) now() time.Time {
	if n.clock == nil {
		return time.Now()
	}
	return n.clock()
}

// ID is the device ID.
func (n *Node) ID() peer.ID { return n.id }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// serve is Run without its shutdown bound: it serves until ctx is
// cancelled and returns after its goroutines exit (Run closes the node).
// Each of services runs as a task beside the node's own (the local API:
// cmd/meshd passes node/localapi's Serve) and must return once ctx is done.
func (n *Node) serve(ctx context.Context, services []func(context.Context)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	n.runCtx = ctx
	n.registerProtocols()
	if err := n.startDHT(ctx); err != nil {
		return err
	}
	if err := n.loadReplicas(ctx); err != nil {
		return err
	}
	n.updateFormerWriters() // before any peer's item is applied
	n.notifyConns()
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { n.onConnected(ctx, c) },
	})

	var wg sync.WaitGroup
	run := func(name string, f func(context.Context)) {
		wg.Add(1)
		n.stop.started(name)
		go func() {
			defer wg.Done()
			f(ctx)
			n.stop.ended(name)
			n.log.Debug("stopped", "task", name)
		}()
	}
	for _, svc := range services {
		run("api", svc)
	}
	run("live", n.liveLoop)
	run("changes", n.changeLoop)
	run("redial", n.redialLoop)
	run("push", n.pushLoop)
	run("rounds", n.rounds.loop)
	run("identify", n.watchIdentify)
	run("relays", n.relayLoop)
	run("punch", n.punch.run)
	run("stale-conns", n.stale.run)
	run("sync", func(ctx context.Context) {
		if err := n.sync.Run(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("sync engine stopped", "err", err)
		}
	})
	run("roles", n.rolesLoop)
	run("storage", n.st.loop)
	run("store", n.storeLoop)
	n.kickRoles()
	if !n.cfg.NoMDNS {
		run("mdns", n.runMDNS)
	}
	close(n.ready)
	n.log.Info("meshd running", "id", n.id.String(), "addrs", n.host.Addrs(), "socket", SocketPath(n.cfg.Home))
	<-ctx.Done()
	n.stop.set("folders")
	n.folders.stopAll()
	n.stop.set(partTasks)
	wg.Wait()
	return nil
}

// Close stops the host and closes the database. It is safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.dht != nil {
			n.stop.set("DHT")
			errs = append(errs, n.dht.Close())
		}
		n.stop.set("tunnels")
		errs = append(errs, n.closeTunnels())
		if n.sync != nil {
			n.stop.set("sync engine")
			errs = append(errs, n.sync.Close())
		}
		if n.blobSvc != nil {
			n.stop.set("blob service")
			errs = append(errs, n.blobSvc.Close())
		}
		if n.blobStore != nil {
			n.stop.set("blob store")
			errs = append(errs, n.blobStore.Close())
		}
		if n.host != nil {
			n.stop.set("libp2p host")
			errs = append(errs, n.host.Close())
		}
		n.stop.set("badger store " + n.health.dir)
		errs = append(errs, n.db.Close())
		n.stop.set("")
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// handle registers a /meshwork/ protocol handler that only current members
// may use.
func (n *Node) handle(pid protocol.ID, h network.StreamHandler) {
	n.host.SetStreamHandler(pid, func(s network.Stream) {
		remote := s.Conn().RemotePeer()
		if !n.IsMember(remote) {
			n.log.Info("refused stream from non-member", "peer", remote.String(), "protocol", string(pid))
			s.Reset()
			n.pullMembership()
			return
		}
		h(s)
	})
}

func (n *Node) registerProtocols() {
	n.host.SetStreamHandler(ProtoInvite, n.handleInvite) // open to non-members by design
	n.handle(ProtoMembership, n.handleMembership)
	n.handle(ProtoFolderWait, n.handleFolderWait)
	if h := n.st.vaultHandler(); h != nil {
		n.handle(vault.Proto, h)
	}
}

// IsMember reports whether p is a current, non-revoked member of this
// device's mesh.
func (n *Node) IsMember(p peer.ID) bool { return n.members.isMember(p) }

// meshLog returns a copy of the current log, or errNoMesh before the
// device is in a mesh: the one "no mesh" check of the API's methods.
func (n *Node) meshLog() (*identity.Log, error) {
	if l := n.membership(); l != nil {
		return l, nil
	}
	return nil, errNoMesh
}

// membership returns a copy of the current log, or nil.
func (n *Node) membership() *identity.Log { return n.members.current() }

func (n *Node) loadMembership() error {
	b, err := dbGet(n.db, keyMembership)
	if err != nil {
		return fmt.Errorf("load membership log: %w", err)
	}
	if b == nil {
		return nil
	}
	l, err := identity.DecodeLog(b)
	if err != nil {
		return fmt.Errorf("load membership log: stored log does not verify: %w", err)
	}
	return n.members.update(func(*identity.Log) (*identity.Log, error) { return l, nil })
}

// commitLocked persists l, the log after a change, updates the gater and
// schedules a push to every member. It runs inside members.update, with
// the members' lock held.
func (n *Node) commitLocked(l *identity.Log) error {
	if err := dbPut(n.db, keyMembership, l.Encode()); err != nil {
		return fmt.Errorf("save membership log: %w", err)
	}
	n.schedulePush()
	n.kickDial()
	n.kickRoles()
	select { // the relays want the newest proof of membership
	case n.relays.reauth <- struct{}{}:
	default:
	}
	return nil
}

// schedulePush asks the push loop to send our state to every member.
func (n *Node) schedulePush() {
	select {
	case n.pushAll <- struct{}{}:
	default:
	}
}

// isRevoked reports whether the log marks p revoked.
func (n *Node) isRevoked(p peer.ID) bool {
	m, ok := n.members.lookup(p)
	return ok && m.Revoked
}

// dropRevoked closes connections to revoked devices (the gater refuses new
// ones). The push loop calls it after every membership change.
func (n *Node) dropRevoked() {
	for _, p := range n.host.Network().Peers() {
		if n.isRevoked(p) {
			n.log.Info("disconnecting revoked device", "peer", p.String())
			n.tun.disconnect(p)
			_ = n.host.Network().ClosePeer(p)
		}
	}
}

func (n *Node) kickDial() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Init creates a new mesh with this device as its owner.
func (n *Node) Init(name string) (identity.MeshID, error) {
	if name == "" {
		return identity.MeshID{}, errors.New("init mesh: a device name is required (--name)")
	}
	var id identity.MeshID
	err := n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur != nil {
			return nil, fmt.Errorf("init mesh: this device already belongs to mesh %s", cur.MeshID())
		}
		if err := n.refuseOnStorage("init mesh"); err != nil {
			return nil, fmt.Errorf("%w; join a mesh with a code from 'mesh invite --storage'", err)
		}
		l, err := identity.NewMesh(n.key, name, n.now())
		if err != nil {
			return nil, fmt.Errorf("init mesh: %w", err)
		}
		if err := n.st.createMeshKey(); err != nil {
			return nil, err
		}
		if err := n.commitLocked(l); err != nil {
			return l, err // the mesh stays created, as before
		}
		n.log.Info("created mesh", "mesh", l.MeshID().String(), "name", name)
		id = l.MeshID()
		return l, nil
	})
	if err != nil {
		return identity.MeshID{}, err
	}
	return id, nil
}

// Revoke revokes a device given by name or ID.
func (n *Node) Revoke(who string) (identity.Member, error) {
	var m identity.Member
	err := n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur == nil {
			return nil, errNoMesh
		}
		var err error
		if m, err = findMember(cur, who); err != nil {
			return nil, fmt.Errorf("revoke %q: %w", who, err)
		}
		if m.ID == n.id {
			return nil, fmt.Errorf("revoke %q: a device cannot revoke itself", who)
		}
		if err := cur.Revoke(n.key, m.ID, n.now()); err != nil {
			return nil, fmt.Errorf("revoke %q: %w", who, err)
		}
		if err := n.commitLocked(cur); err != nil {
			return nil, err
		}
		n.log.Info("revoked device", "peer", m.ID.String(), "name", m.Name)
		return nil, nil
	})
	if err != nil {
		return identity.Member{}, err
	}
	// After the members' lock is released: news takes the engine's lock,
	// and the engine asks membership (IsMember) under its own, so writing
	// it under the members' lock could deadlock with a recheck of peers.
	n.objs.news("revoked", m.ID, fmt.Sprintf("device %s (%s) was revoked", m.Name, m.ID))
	return m, nil
}

var errNoMesh = errors.New("this device is in no mesh yet: run 'mesh init --name NAME' or 'mesh join CODE --name NAME'")

// findMember finds a device of the log (revoked ones included) by name or ID.
func findMember(l *identity.Log, who string) (identity.Member, error) {
	if id, err := peer.Decode(who); err == nil {
		if m, ok := l.Lookup(id); ok {
			return m, nil
		}
	}
	var found []identity.Member
	for _, m := range l.Members() {
		if m.Name == who {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return identity.Member{}, fmt.Errorf("no device with that name or ID (see 'mesh devices')")
	case 1:
		return found[0], nil
	default:
		return identity.Member{}, fmt.Errorf("%d devices have that name: give the device ID", len(found))
	}
}
