package node

// Presence, last-seen times and the publishers of live events.
//
// Presence ("awareness") is a shared object, presenceID, with one item per
// device (ID = the device ID) whose text is {"viewing": [folder, ...]}: the
// folders that some client of that device's API is viewing now, i.e. that
// have an open /api/v1/events?viewing= stream. A device rewrites only its
// own item, only when that set changes (no heartbeat traffic). A device's
// viewing list counts only while the device is online, so it expires when
// the device leaves; a device's own list shrinks when a stream closes.

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

const presenceID = syncproto.ObjectID("meshwork-presence")

// Presence is one device's entry of the presence feed and event.
type Presence struct {
	Device  string   `json:"device"`
	Name    string   `json:"name"`
	Online  bool     `json:"online"`
	Viewing []string `json:"viewing"`
}

type presenceBody struct {
	Viewing []string `json:"viewing"`
}

// presence is what this daemon knows of who is here, apart from the
// presence object itself (which Node writes, writePresence): when each
// peer last connected or disconnected, which folders this device's API
// clients are viewing, and the wake-up of liveLoop. It owns its lock;
// nothing outside its methods touches its fields.
type presence struct {
	started time.Time     // when this daemon started: its own last-seen time
	kick    chan struct{} // wakes liveLoop; buffered 1, so a send never blocks

	mu     sync.Mutex
	seenAt map[peer.ID]time.Time // peer → its last connection event
	views  map[string]int        // folder → open event streams viewing it
}

func newPresence(started time.Time) *presence {
	return &presence{
		started: started,
		kick:    make(chan struct{}, 1),
		seenAt:  map[peer.ID]time.Time{},
		views:   map[string]int{},
	}
}

// seen records a connection event of id at t.
func (p *presence) seen(id peer.ID, t time.Time) {
	p.mu.Lock()
	p.seenAt[id] = t
	p.mu.Unlock()
}

// lastSeen returns when id was last connected or disconnected, if this
// daemon saw it.
func (p *presence) lastSeen(id peer.ID) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seenAt[id]
	return t, ok
}

// startedAt is when this daemon started (the device's own last-seen time).
func (p *presence) startedAt() time.Time { return p.started }

// view counts one more client viewing folder.
func (p *presence) view(folder string) {
	p.mu.Lock()
	p.views[folder]++
	p.mu.Unlock()
}

// unview counts one client fewer viewing folder, forgetting the folder at
// zero.
func (p *presence) unview(folder string) {
	p.mu.Lock()
	if p.views[folder]--; p.views[folder] <= 0 {
		delete(p.views, folder)
	}
	p.mu.Unlock()
}

// viewing lists the folders some client is viewing, sorted.
func (p *presence) viewing() []string {
	p.mu.Lock()
	v := make([]string, 0, len(p.views))
	for f := range p.views {
		v = append(v, f)
	}
	p.mu.Unlock()
	sort.Strings(v)
	return v
}

// wake asks liveLoop for a round of events; it never blocks (the
// connection notifications call it), and wakes that come before the loop
// takes the last one merge into one.
func (p *presence) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// woken receives once per merged run of wakes.
func (p *presence) woken() <-chan struct{} { return p.kick }

// peerEvent notes a connection or disconnection (swarm notification path:
// must not block).
func (n *Node) peerEvent(p peer.ID) {
	n.live.seen(p, n.now().UTC())
	n.live.wake()
}

// view registers a client viewing folder; the returned func unregisters it.
func (n *Node) view(folder string) func() {
	if folder == "" {
		return func() {}
	}
	n.live.view(folder)
	n.writePresence()
	return func() {
		n.live.unview(folder)
		n.writePresence()
	}
}

// writePresence rewrites this device's presence item if its viewing set
// changed.
func (n *Node) writePresence() {
	v := n.live.viewing()
	if n.sync.Object(presenceID) == nil {
		return
	}
	id := syncproto.ItemID(n.id.String())
	var cur presenceBody
	_ = n.sync.View(presenceID, func(o *syncproto.Object) error {
		if it, ok := o.Item(id); ok && !it.Sync.Deleted {
			if t, ok := it.Body.(syncproto.Text); ok {
				_ = json.Unmarshal([]byte(t), &cur)
			}
		}
		return nil
	})
	if cur.Viewing == nil {
		cur.Viewing = []string{}
	}
	if reflect.DeepEqual(cur.Viewing, v) {
		return
	}
	b, _ := json.Marshal(presenceBody{Viewing: v})
	if _, err := n.sync.Update(presenceID, id, syncproto.Content{Title: n.deviceName(n.id), Body: syncproto.Text(b)}); err != nil {
		n.log.Warn("write presence", "err", err)
	}
}

// presence lists every member's presence, from devices (deviceList).
func (n *Node) presence(devices []Device) []Presence {
	bodies := map[string]presenceBody{}
	if n.sync.Object(presenceID) != nil {
		_ = n.sync.View(presenceID, func(o *syncproto.Object) error {
			for _, it := range o.Items() {
				var b presenceBody
				if t, ok := it.Body.(syncproto.Text); ok && !it.Sync.Deleted && json.Unmarshal([]byte(t), &b) == nil {
					bodies[string(it.Sync.ID)] = b
				}
			}
			return nil
		})
	}
	var out []Presence
	for _, d := range devices {
		p := Presence{Device: d.ID, Name: d.Name, Online: d.Online, Viewing: []string{}}
		if d.Online && bodies[d.ID].Viewing != nil {
			p.Viewing = bodies[d.ID].Viewing
		}
		out = append(out, p)
	}
	return out
}

func (n *Node) presenceItems() []syncproto.Item {
	var out []syncproto.Item
	for _, p := range n.presence(n.deviceList(context.Background(), false)) {
		b, _ := json.Marshal(p)
		title := p.Name + " offline"
		if p.Online {
			title = p.Name + " online"
			if len(p.Viewing) > 0 {
				title += ", viewing " + strings.Join(p.Viewing, ", ")
			}
		}
		out = append(out, viewItem(n.id, p.Device, title, string(b), n.now()))
	}
	return out
}

// onObjectChange queues a change (local or remote) for changeLoop. It is
// called by the sync engine, possibly with the node's own locks held by
// the caller of a local change (Revoke writes news under the members'
// lock), so it only appends and wakes.
func (n *Node) onObjectChange(obj syncproto.ObjectID, items []syncproto.Item) {
	n.changes.push(objChange{obj, items})
}

// changeLoop turns queued object changes into live events, in order.
func (n *Node) changeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.changes.wake():
		}
		for _, c := range n.changes.take() {
			n.publishObjectChange(c.obj, c.items)
		}
	}
}

// publishObjectChange publishes the events of one change.
func (n *Node) publishObjectChange(obj syncproto.ObjectID, items []syncproto.Item) {
	switch obj {
	case presenceID:
		n.live.wake()
		return
	case catalogID:
		n.publishChange("catalog", items)
		return
	case newsID:
		for _, it := range items {
			if !it.Sync.Deleted {
				top := it.Sync.Top()
				e := NewsEntry{ID: string(it.Sync.ID), Time: top.When.Time().UTC(), Text: it.Title, Device: n.deviceNameS(string(top.By))}
				if t, ok := it.Body.(syncproto.Text); ok {
					e.Kind, e.Peer, _ = strings.Cut(string(t), " ")
				}
				n.events.publish("news", "news", e)
			}
		}
	}
	if name, folder := n.objs.nameOf(obj); name != "" {
		n.publishChange(name, items)
		if folder {
			n.live.wake()
		}
	}
}

func (n *Node) publishChange(name string, items []syncproto.Item) {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, string(it.Sync.ID))
	}
	n.events.publish("change", name, map[string]any{"object": name, "items": ids})
}

// liveLoop publishes devices, presence and folder events when they change:
// woken by connection events and object changes, and once a second while a
// folder is transferring (progress).
func (n *Node) liveLoop(ctx context.Context) {
	var lastDevices, lastPresence []byte
	lastFolders := map[string][]byte{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		busy := false
		if n.events.subs.Load() == 0 {
			// Nobody listens: compute nothing (a folder's status walks all
			// its items); the first stream gets everything afresh.
			lastDevices, lastPresence = nil, nil
			clear(lastFolders)
		} else if n.membership() != nil {
			devices := n.deviceList(ctx, false)
			if b, _ := json.Marshal(devices); string(b) != string(lastDevices) {
				lastDevices = b
				n.events.publish("devices", "devices", json.RawMessage(b))
			}
			if b, _ := json.Marshal(n.presence(devices)); string(b) != string(lastPresence) {
				lastPresence = b
				n.events.publish("presence", "presence", json.RawMessage(b))
			}
			for _, fi := range n.folderInfos() {
				if len(fi.Transferring) > 0 || fi.InSync < 1 {
					busy = true
				}
				if b, _ := json.Marshal(fi); string(b) != string(lastFolders[fi.Name]) {
					lastFolders[fi.Name] = b
					n.events.publish("folder", fi.Name, json.RawMessage(b))
				}
			}
		}
		var tc <-chan time.Time
		if busy {
			tc = tick.C
		}
		select {
		case <-ctx.Done():
			return
		case <-n.live.woken():
			// Let a burst of changes settle into one round of events.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		case <-tc:
		}
	}
}

// notifyConns wires connection events to last-seen and live events.
func (n *Node) notifyConns() {
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { n.peerEvent(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { n.peerEvent(c.RemotePeer()) },
	})
}

// EventStream is one open live event stream (GET /api/v1/events, served
// by node/localapi): the events after a point, with the stream counted as
// an open viewer until Close.
type EventStream struct {
	n        *Node
	after    uint64
	complete bool
	unview   func()
}

// Events opens a live event stream continuing after lastEventID (an SSE
// Last-Event-ID; "" for from now), counting its client as viewing the
// folder viewing ("" none) until Close. ErrNotFound when viewing is not a
// folder of the mesh.
func (n *Node) Events(lastEventID, viewing string) (*EventStream, error) {
	if viewing != "" {
		if _, ok := n.catalog()[viewing]; !ok {
			return nil, withKind(ErrNotFound, fmt.Errorf("viewing %q: no such folder", viewing))
		}
	}
	s := &EventStream{n: n}
	s.after, s.complete = n.events.resume(lastEventID)
	n.events.subs.Add(1)
	n.live.wake() // the current devices, presence and folders, for this stream too
	s.unview = n.view(viewing)
	return s, nil
}

// Start is the stream's first SSE frame: a reset event when the client
// missed events (it reloads), else a comment naming the point it resumes at.
func (s *EventStream) Start() string {
	if !s.complete {
		return fmt.Sprintf("id: %s\nevent: reset\ndata: {}\n\n", s.n.events.id(s.after))
	}
	return fmt.Sprintf(": meshwork events from %s\n\n", s.n.events.id(s.after))
}

// Next returns the events published since the last call (or Start), and a
// channel closed at the next publish (Stopped says when the node stops).
func (s *EventStream) Next() ([]Event, <-chan struct{}) {
	evs, wake := s.n.events.since(s.after)
	if len(evs) > 0 {
		s.after = evs[len(evs)-1].Seq
	}
	return evs, wake
}

// Format is e as an SSE frame.
func (s *EventStream) Format(e Event) string { return s.n.events.format(e) }

// Stopped is closed when the node stops serving.
func (s *EventStream) Stopped() <-chan struct{} { return s.n.runCtx.Done() }

// Close ends the stream's viewing and its count.
func (s *EventStream) Close() {
	s.unview()
	s.n.events.subs.Add(-1)
}
