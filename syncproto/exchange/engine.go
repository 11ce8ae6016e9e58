package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshwork/meshwork/syncproto"
	"github.com/meshwork/meshwork/syncproto/hlc"
)

// ProtocolID is the libp2p protocol of the delta exchange.
const ProtocolID protocol.ID = "/meshwork/sync/1.0.0"

// Sentinel errors.
var (
	// ErrClosed reports a call on a closed engine.
	ErrClosed = errors.New("sync exchange closed")
	// ErrUnknownObject reports an object the engine (or store) does not hold.
	ErrUnknownObject = errors.New("unknown object")
	// ErrExists reports an Add of an object the engine already holds.
	ErrExists = errors.New("object already held")
	// ErrNotMember reports a peer that is not a member of the mesh.
	ErrNotMember = errors.New("peer is not a mesh member")
	// ErrRefused reports a peer that refused a session or gave up on it.
	ErrRefused = errors.New("peer refused")
	// ErrProtocol reports a peer that broke the protocol.
	ErrProtocol = errors.New("sync protocol violation")
	// ErrTooLarge reports a local change whose item would exceed MaxItemSize.
	ErrTooLarge = errors.New("item too large")
)

// Members is the mesh membership: a peer that is not a member gets nothing
// (its streams are reset before anything is read) and is never sent to.
// It must be fast and safe for concurrent use.
type Members interface {
	IsMember(p peer.ID) bool
}

// Config is what an Engine needs from the daemon.
type Config struct {
	// Members is the mesh membership gate. Required.
	Members Members
	// Store keeps the replicas. Nil: a MemStore.
	Store Store
	// Clock is the device's hybrid logical clock, shared by its replicas.
	// Nil: a clock on time.Now with hlc.DefaultMaxSkew.
	Clock *hlc.Clock
	// Epoch is the epoch given to objects created with ObjectConfig. Zero:
	// the Store's epoch if it is an EpochStore, else a random one.
	Epoch syncproto.Epoch
	// OnChange is called with the items that changed when changes from a
	// peer were applied (and persisted), from the goroutine that applied
	// them, without engine locks held. Nil: nothing is called. It should
	// return quickly: the session waits for it.
	OnChange func(obj syncproto.ObjectID, changed []syncproto.Item)
	// OnLocalChange is called with the items a local change (Update,
	// Delete, Resolve, Change) made, after they are persisted, without
	// engine locks held. Nil: nothing is called. It should return quickly.
	OnLocalChange func(obj syncproto.ObjectID, changed []syncproto.Item)
	// IOTimeout bounds every read and write of a frame. Zero: 30 s.
	IOTimeout time.Duration
	// Signer signs the versions this device creates. Nil: a KeySigner
	// with the host's private key (no signatures when the peerstore holds
	// none).
	Signer syncproto.Signer
	// Verifier checks the signatures of versions received from peers.
	// Nil: a PeerVerifier.
	Verifier syncproto.Verifier
	// Validate is given to the objects created with ObjectConfig and
	// loaded from the Store (syncproto.Config.Validate): it judges every
	// new version by its meaning. Nil: only roles, update steps and sizes
	// are checked.
	Validate syncproto.Validator
	// FormerWriter is given to the objects created with ObjectConfig and
	// loaded from the Store (syncproto.Config.FormerWriter): until when a
	// device that may no longer write could.
	FormerWriter func(obj syncproto.ObjectID, d syncproto.DeviceID) (hlc.Timestamp, bool)
}

// MaxReceivedItemSize bounds the encoding of an item a replica accepts
// from a peer or an API (syncproto.Config.MaxItemSize of ObjectConfig):
// the largest item that fits a CHANGES frame, so that whatever a replica
// accepts it can relay.
const MaxReceivedItemSize = MaxFrameSize - 64 - syncproto.MaxIDLen - 10

// Stats are the engine's counters since New. Messages are counted as frames
// (a summary split over several REQUEST frames counts once).
type Stats struct {
	SessionsStarted  int64 // streams opened
	SessionsServed   int64 // streams accepted
	StreamsRefused   int64 // streams from non-members, reset
	AnnouncesSent    int64 // ANNOUNCE frames
	RequestsSent     int64 // REQUESTs
	FullRequestsSent int64 // REQUESTs with a zero cursor (full reconciliation)
	RequestsServed   int64 // REQUESTs answered
	ChangesSent      int64 // items sent in CHANGES frames
	ChangesReceived  int64 // items received in CHANGES frames
	ItemsChanged     int64 // received items that changed a replica
	ItemsRefused     int64 // received items refused (read-only author, malformed, clock skew, bad signature, rules)
	BadSignatures    int64 // of those, refused for a missing or bad version signature
	ItemsUnsendable  int64 // items skipped when serving, too large for a frame
	Panics           int64 // sessions that panicked (logged, stream reset)
}

type counters struct {
	sessionsStarted, sessionsServed, streamsRefused, announcesSent atomic.Int64
	requestsSent, fullRequestsSent, requestsServed, changesSent    atomic.Int64
	changesReceived, itemsChanged, itemsRefused, badSignatures     atomic.Int64
	itemsUnsendable                                                atomic.Int64
	panics                                                         atomic.Int64 // recovered in sessions
}

// replica is an object held by the engine. mu serialises the changes that
// are persisted (local changes, applied batches and their cursors), so that
// the snapshots reach the store in order.
type replica struct {
	obj *syncproto.Object
	mu  sync.Mutex
}

// Engine runs the delta exchange of a device's replicas with the connected
// mesh members over ProtocolID.
type Engine struct {
	host    host.Host
	cfg     Config
	self    syncproto.DeviceID
	log     *slog.Logger
	loadErr error

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // stream handlers and Sync calls

	mu      sync.Mutex
	closed  bool
	running bool
	runDone chan struct{}
	objects map[syncproto.ObjectID]*replica
	peers   map[peer.ID]*peerState
	recheck chan struct{} // MembershipChanged: re-evaluate connected peers

	c counters
}

// New returns an engine for the device of h and registers the ProtocolID
// stream handler on h. It loads the replicas from cfg.Store; a load error
// is returned by Run. Run starts the automatic catch-up and the pushes;
// Close stops everything.
func New(h host.Host, cfg Config, logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Store == nil {
		cfg.Store = NewMemStore()
	}
	if cfg.Clock == nil {
		cfg.Clock = hlc.NewClock(time.Now, hlc.DefaultMaxSkew)
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 30 * time.Second
	}
	if cfg.Signer == nil {
		if k := h.Peerstore().PrivKey(h.ID()); k != nil {
			cfg.Signer = KeySigner{Key: k}
		}
	}
	if cfg.Verifier == nil {
		cfg.Verifier = &PeerVerifier{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		host:    h,
		cfg:     cfg,
		self:    syncproto.DeviceID(h.ID().String()),
		log:     logger,
		ctx:     ctx,
		cancel:  cancel,
		objects: make(map[syncproto.ObjectID]*replica),
		peers:   make(map[peer.ID]*peerState),
		recheck: make(chan struct{}, 1),
	}
	e.loadErr = e.load(ctx)
	if e.loadErr != nil {
		logger.Error("load replicas", "err", e.loadErr)
	}
	h.SetStreamHandler(ProtocolID, e.handle)
	return e
}

func (e *Engine) load(ctx context.Context) error {
	if e.cfg.Members == nil {
		return fmt.Errorf("new sync engine: no Members: %w", syncproto.ErrMalformed)
	}
	if e.cfg.Epoch.IsZero() {
		if es, ok := e.cfg.Store.(EpochStore); ok {
			ep, err := es.Epoch(ctx)
			if err != nil {
				return fmt.Errorf("load epoch: %w", err)
			}
			e.cfg.Epoch = ep
		} else {
			ep, err := syncproto.NewEpoch(nil)
			if err != nil {
				return err
			}
			e.cfg.Epoch = ep
		}
	}
	ids, err := e.cfg.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("load replicas: %w", err)
	}
	for _, id := range ids {
		data, err := e.cfg.Store.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("load replica %q: %w", id, err)
		}
		o, err := syncproto.DecodeObject(data, e.ObjectConfig())
		if err != nil {
			return fmt.Errorf("load replica %q: %w", id, err)
		}
		if o.ID() != id {
			return fmt.Errorf("load replica %q: snapshot is of %q: %w", id, o.ID(), syncproto.ErrMalformed)
		}
		e.objects[id] = &replica{obj: o}
	}
	return nil
}

// ObjectConfig returns the syncproto configuration of this device's
// replicas, for syncproto.NewObject: the host's peer ID as DeviceID, the
// clock, the epoch, the signer of its versions and the verifier of its
// peers', Config.Validate, MaxReceivedItemSize and Config.FormerWriter.
func (e *Engine) ObjectConfig() syncproto.Config {
	return syncproto.Config{Self: e.self, Clock: e.cfg.Clock, Epoch: e.cfg.Epoch,
		Signer: e.cfg.Signer, Verifier: e.cfg.Verifier,
		Validate: e.cfg.Validate, MaxItemSize: MaxReceivedItemSize,
		FormerWriter: e.cfg.FormerWriter}
}

// Self returns this device's ID: the host's peer ID in text form.
func (e *Engine) Self() syncproto.DeviceID { return e.self }

// Run announces the replicas to every connected member peer, catches up
// with each peer that connects, and pushes local and relayed changes, until
// ctx is done or Close is called. It returns after every goroutine it
// started has exited: nil after Close, ctx.Err() otherwise.
func (e *Engine) Run(ctx context.Context) error {
	if e.loadErr != nil {
		return fmt.Errorf("run sync engine: %w", e.loadErr)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("run sync engine: %w", ErrClosed)
	}
	if e.running {
		e.mu.Unlock()
		return errors.New("run sync engine: already running")
	}
	e.running = true
	e.runDone = make(chan struct{})
	defer close(e.runDone)
	e.mu.Unlock()

	sub, err := e.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("run sync engine: subscribe to connection events: %w", err)
	}
	defer sub.Close()

	runCtx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()

	var peersWG sync.WaitGroup
	for _, p := range e.host.Network().Peers() {
		e.peerUp(runCtx, &peersWG, p)
	}
	for done := false; !done; {
		select {
		case <-runCtx.Done():
			done = true
		case <-e.recheck:
			e.recheckPeers(runCtx, &peersWG)
		case ev, ok := <-sub.Out():
			if !ok {
				done = true
				break
			}
			c := ev.(event.EvtPeerConnectednessChanged)
			switch c.Connectedness {
			case network.Connected, network.Limited:
				e.peerUp(runCtx, &peersWG, c.Peer)
			case network.NotConnected:
				e.peerDown(c.Peer)
			}
		}
	}
	cancel()
	peersWG.Wait()
	e.mu.Lock()
	clear(e.peers)
	e.mu.Unlock()
	if ctx.Err() != nil && e.ctx.Err() == nil {
		return ctx.Err()
	}
	return nil
}

// MembershipChanged tells the engine that mesh membership changed: a peer
// that connected before it became a member (a device that just redeemed an
// invite over that connection) is taken on, one that is no longer a member
// is dropped, and every shared object is announced again to each member
// with a reply wanted (roles may have changed: what either side ignored
// before may be taken now). It does not block.
func (e *Engine) MembershipChanged() {
	select {
	case e.recheck <- struct{}{}:
	default:
	}
}

// recheckPeers re-evaluates the connected peers (Run's goroutine only).
func (e *Engine) recheckPeers(ctx context.Context, wg *sync.WaitGroup) {
	for _, p := range e.host.Network().Peers() {
		e.peerUp(ctx, wg, p)
	}
	e.mu.Lock()
	var gone []peer.ID
	var kept []*peerState
	for p, ps := range e.peers {
		if !e.cfg.Members.IsMember(p) {
			gone = append(gone, p)
		} else {
			kept = append(kept, ps)
		}
	}
	e.mu.Unlock()
	for _, p := range gone {
		e.peerDown(p)
	}
	for _, ps := range kept {
		ps.mark(true, e.sharedWith(ps.id)...)
	}
}

// Close unregisters the stream handler, resets the engine's streams and
// waits for its goroutines (Run's included). It is safe to call twice.
func (e *Engine) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		e.host.RemoveStreamHandler(ProtocolID)
		e.cancel()
	}
	runDone := e.runDone
	e.mu.Unlock()
	e.wg.Wait()
	if runDone != nil {
		<-runDone
	}
	return nil
}

// track registers a goroutine serving a stream or a Sync call; it fails
// once the engine is closed.
func (e *Engine) track() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		SessionsStarted:  e.c.sessionsStarted.Load(),
		SessionsServed:   e.c.sessionsServed.Load(),
		StreamsRefused:   e.c.streamsRefused.Load(),
		AnnouncesSent:    e.c.announcesSent.Load(),
		RequestsSent:     e.c.requestsSent.Load(),
		FullRequestsSent: e.c.fullRequestsSent.Load(),
		RequestsServed:   e.c.requestsServed.Load(),
		ChangesSent:      e.c.changesSent.Load(),
		ChangesReceived:  e.c.changesReceived.Load(),
		ItemsChanged:     e.c.itemsChanged.Load(),
		ItemsRefused:     e.c.itemsRefused.Load(),
		BadSignatures:    e.c.badSignatures.Load(),
		ItemsUnsendable:  e.c.itemsUnsendable.Load(),
		Panics:           e.c.panics.Load(),
	}
}

// Add starts holding obj, a replica held by this device (obj.Self() must be
// Self(); create it with ObjectConfig), persists it and announces it to the
// connected peers that are members of it, asking for their announcements
// in return: a replica new here catches up at once from those that hold it.
func (e *Engine) Add(obj *syncproto.Object) error {
	if obj.Self() != e.self {
		return fmt.Errorf("add %q: replica held by %q, not %q: %w", obj.ID(), obj.Self(), e.self, syncproto.ErrMalformed)
	}
	r := &replica{obj: obj}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("add %q: %w", obj.ID(), ErrClosed)
	}
	if _, ok := e.objects[obj.ID()]; ok {
		e.mu.Unlock()
		return fmt.Errorf("add %q: %w", obj.ID(), ErrExists)
	}
	e.objects[obj.ID()] = r
	r.mu.Lock() // before anyone else can reach it
	e.mu.Unlock()
	err := e.save(r)
	r.mu.Unlock()
	if err != nil {
		e.mu.Lock()
		delete(e.objects, obj.ID())
		e.mu.Unlock()
		return fmt.Errorf("add %q: %w", obj.ID(), err)
	}
	e.markDirty(obj.ID(), "", true)
	return nil
}

// Remove stops holding an object and deletes it from the store.
func (e *Engine) Remove(id syncproto.ObjectID) error {
	e.mu.Lock()
	r, ok := e.objects[id]
	delete(e.objects, id)
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove %q: %w", id, ErrUnknownObject)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := e.cfg.Store.Delete(e.ctx, id); err != nil {
		return fmt.Errorf("remove %q: %w", id, err)
	}
	return nil
}

// Object returns the replica of id, or nil. Read it freely; change it only
// through the engine (Update, Delete, Resolve, SetRole), which persists and
// pushes the changes.
func (e *Engine) Object(id syncproto.ObjectID) *syncproto.Object {
	if r := e.replica(id); r != nil {
		return r.obj
	}
	return nil
}

// Objects returns the IDs of the replicas held, in increasing order.
func (e *Engine) Objects() []syncproto.ObjectID {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]syncproto.ObjectID, 0, len(e.objects))
	for id := range e.objects {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (e *Engine) replica(id syncproto.ObjectID) *replica {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.objects[id]
}

// Update changes an item of an object (syncproto.Object.Update), persists
// the replica and pushes the change to the connected members of the object.
func (e *Engine) Update(obj syncproto.ObjectID, item syncproto.ItemID, c syncproto.Content) (syncproto.Item, error) {
	if err := checkContentSize(obj, item, c); err != nil {
		return syncproto.Item{}, err
	}
	return e.change(obj, "update", func(o *syncproto.Object) (syncproto.Item, error) { return o.Update(item, c) })
}

// UpdateFrom is Update for an edit that started from the item version
// whose topmost record is base (syncproto.Object.UpdateFrom).
func (e *Engine) UpdateFrom(obj syncproto.ObjectID, item syncproto.ItemID, base syncproto.History, c syncproto.Content) (syncproto.Item, error) {
	if err := checkContentSize(obj, item, c); err != nil {
		return syncproto.Item{}, err
	}
	return e.change(obj, "update", func(o *syncproto.Object) (syncproto.Item, error) { return o.UpdateFrom(item, base, c) })
}

func checkContentSize(obj syncproto.ObjectID, item syncproto.ItemID, c syncproto.Content) error {
	if n := len(syncproto.EncodeItem(syncproto.Item{Sync: syncproto.Sync{ID: item}, Content: c})); n > MaxItemSize/2 {
		// Leave room for history and conflicts.
		return fmt.Errorf("update %q in %q: content of %d bytes exceeds %d: %w", item, obj, n, MaxItemSize/2, ErrTooLarge)
	}
	return nil
}

// Delete makes an item a tombstone (syncproto.Object.Delete), persists and
// pushes the change.
func (e *Engine) Delete(obj syncproto.ObjectID, item syncproto.ItemID) (syncproto.Item, error) {
	return e.change(obj, "delete", func(o *syncproto.Object) (syncproto.Item, error) { return o.Delete(item) })
}

// Resolve resolves an item's conflicts (syncproto.Object.Resolve), persists
// and pushes the change.
func (e *Engine) Resolve(obj syncproto.ObjectID, item syncproto.ItemID, keep ...syncproto.Content) (syncproto.Item, error) {
	return e.change(obj, "resolve", func(o *syncproto.Object) (syncproto.Item, error) { return o.Resolve(item, keep...) })
}

// SetRole changes a member's role in an object (syncproto.Object.SetRole),
// persists it and announces the object to its connected members, so that a
// new member catches up at once.
func (e *Engine) SetRole(obj syncproto.ObjectID, d syncproto.DeviceID, role syncproto.Role) error {
	r := e.replica(obj)
	if r == nil {
		return fmt.Errorf("set role of %q in %q: %w", d, obj, ErrUnknownObject)
	}
	r.mu.Lock()
	err := r.obj.SetRole(d, role)
	if err == nil {
		err = e.save(r)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	e.markDirty(obj, "", true)
	return nil
}

// SetMembers replaces obj's member list (see syncproto.Object.SetMembers),
// persists it and announces the object to its connected members, asking
// for theirs in return (a new writer's changes are taken now).
func (e *Engine) SetMembers(obj syncproto.ObjectID, members map[syncproto.DeviceID]syncproto.Role) error {
	r := e.replica(obj)
	if r == nil {
		return fmt.Errorf("set members of %q: %w", obj, ErrUnknownObject)
	}
	r.mu.Lock()
	err := r.obj.SetMembers(members)
	if err == nil {
		err = e.save(r)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	e.markDirty(obj, "", true)
	return nil
}

func (e *Engine) change(obj syncproto.ObjectID, op string, f func(*syncproto.Object) (syncproto.Item, error)) (syncproto.Item, error) {
	var it syncproto.Item
	err := e.Change(obj, func(o *syncproto.Object) error {
		var err error
		it, err = f(o)
		return err
	})
	if err != nil {
		return syncproto.Item{}, err
	}
	return it, nil
}

// Change runs f on the replica of obj with the replica's changes
// serialised, then persists it once and pushes once: a batch of local
// changes (f calls the Object's Update, Delete and Resolve, for example for
// every file of a scanned folder). Whatever f changed is persisted and
// pushed even when f fails. Items whose encoding exceeds MaxItemSize cannot
// be sent to peers; Update checks it, f must.
func (e *Engine) Change(obj syncproto.ObjectID, f func(*syncproto.Object) error) error {
	r := e.replica(obj)
	if r == nil {
		return fmt.Errorf("change %q: %w", obj, ErrUnknownObject)
	}
	r.mu.Lock()
	head := r.obj.Head()
	err := f(r.obj)
	changed := r.obj.Head() != head
	var items []syncproto.Item
	if changed {
		if serr := e.save(r); serr != nil {
			err = errors.Join(err, serr)
			changed = false // not pushed before it is persisted
		} else if e.cfg.OnLocalChange != nil {
			if cs, cerr := r.obj.ChangesSince(syncproto.Cursor{Epoch: r.obj.Epoch(), Seq: head}); cerr == nil {
				for _, c := range cs.Changes {
					items = append(items, c.Item)
				}
			}
		}
	}
	r.mu.Unlock()
	if changed {
		e.markDirty(obj, "", false)
		if e.cfg.OnLocalChange != nil {
			e.cfg.OnLocalChange(obj, items)
		}
	}
	return err
}

// View runs f on the replica of obj under the replica's lock, so f sees a
// consistent object while sessions and local changes wait. It is the read
// path: f must never change the object, and View neither persists, pushes
// nor reports anything (Change compares heads, saves and announces; a
// reader needs none of that). It fails with ErrUnknownObject when obj is
// not held, and otherwise returns f's error.
func (e *Engine) View(obj syncproto.ObjectID, f func(*syncproto.Object) error) error {
	r := e.replica(obj)
	if r == nil {
		return fmt.Errorf("view %q: %w", obj, ErrUnknownObject)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r.obj)
}

// save persists r; the caller holds r.mu.
func (e *Engine) save(r *replica) error {
	b, err := r.obj.MarshalBinary()
	if err != nil {
		return fmt.Errorf("save %q: %w", r.obj.ID(), err)
	}
	if err := e.cfg.Store.Put(e.ctx, r.obj.ID(), b); err != nil {
		return fmt.Errorf("save %q: %w", r.obj.ID(), err)
	}
	return nil
}

// Sync catches up with p at once, both ways: it announces every object
// shared with p and asks p to announce its own, then each side asks for
// what it lacks. It returns when the exchange is done.
func (e *Engine) Sync(ctx context.Context, p peer.ID) error {
	if !e.track() {
		return fmt.Errorf("sync with %s: %w", p, ErrClosed)
	}
	defer e.wg.Done()
	if !e.cfg.Members.IsMember(p) {
		return fmt.Errorf("sync with %s: %w", p, ErrNotMember)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	if err := e.initiate(ctx, p, e.sharedWith(p), true); err != nil {
		return fmt.Errorf("sync with %s: %w", p, err)
	}
	return nil
}

// sharedWith returns the IDs of the objects of which p is a member.
func (e *Engine) sharedWith(p peer.ID) []syncproto.ObjectID {
	d := syncproto.DeviceID(p.String())
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []syncproto.ObjectID
	for id, r := range e.objects {
		if r.obj.Role(d) != syncproto.RoleNone {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
