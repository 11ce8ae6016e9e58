package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/folder"
	"github.com/meshwork/meshwork/node/internal/wire"
	"github.com/meshwork/meshwork/syncproto"
)

// In sync: what 'mesh folder wait' and the status's in_sync promise.
//
// A folder is in sync here when nothing is left to do locally (no local
// change unindexed, nothing received unapplied, every item's content
// present), this device has caught up with every online member of the
// folder since that member connected (a completed two-way sync round), and,
// when members are offline, it has reached at least one member since the
// daemon started (the offline ones may hold changes it has not heard of).
// 'wait' adds a barrier: it first asks each online member to index what it
// has on disk (ProtoFolderWait, a full scan there) and then syncs with it,
// so that after wait returns this device holds every change written on an
// online member before wait was called. Members that are offline or do not
// answer within waitPeerTimeout are named, not waited for. The status does
// not ask anyone: it uses the rounds done so far (on each connection, and
// by waits).

// ProtoFolderWait asks a member to index its copy of a folder now.
//
//	request  frame type 1: uvarint len, object ID (the folder's)
//	reply    frame type 2: byte code, uvarint len, message (UTF-8, at most 512 bytes)
//
// The server runs a full scan of its copy of the folder (waiting for a scan
// that is running) and replies when it is done, with code 0 (indexed: every
// change on its disk when the request arrived is in its replica, pushed to
// its peers), 1 (it does not sync that folder), 2 (refused: the requester
// has no role in it) or 3 (the scan failed; message says why). The request
// frame is at most 256 bytes and the whole exchange is bounded by
// flushServeTimeout on the server; scans of one folder run one at a time.
const ProtoFolderWait = "/meshwork/folder-wait/1.0.0"

const (
	msgFlushReq       = 1
	msgFlushReply     = 2
	maxFlushReq       = 256
	maxFlushMsg       = 512
	maxFlushReply     = 1 + 2 + maxFlushMsg
	flushServeTimeout = 2 * time.Minute
	// waitPeerTimeout bounds how long wait waits for one member's
	// answer and sync round; past it the member is named as not answering.
	waitPeerTimeout = 90 * time.Second
)

// Reply codes of ProtoFolderWait.
const (
	flushIndexed   byte = 0
	flushNotSynced byte = 1
	flushRefused   byte = 2
	flushFailed    byte = 3
)

func encodeFlushReq(id syncproto.ObjectID) []byte { return wire.AppendBytes(nil, []byte(id)) }

func decodeFlushReq(b []byte) (syncproto.ObjectID, error) {
	f, rest, err := wire.ReadBytes(b)
	if err != nil {
		return "", fmt.Errorf("folder-wait request: %w", err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("folder-wait request: %d trailing bytes", len(rest))
	}
	id, err := syncproto.ParseObjectID(string(f))
	if err != nil {
		return "", fmt.Errorf("folder-wait request: %w", err)
	}
	return id, nil
}

func encodeFlushReply(code byte, msg string) []byte {
	if len(msg) > maxFlushMsg {
		msg = msg[:maxFlushMsg]
	}
	return wire.AppendBytes([]byte{code}, []byte(msg))
}

func decodeFlushReply(b []byte) (byte, string, error) {
	if len(b) < 1 {
		return 0, "", errors.New("folder-wait reply: empty")
	}
	code := b[0]
	msg, rest, err := wire.ReadBytes(b[1:])
	switch {
	case err != nil:
		return 0, "", fmt.Errorf("folder-wait reply: %w", err)
	case len(rest) != 0:
		return 0, "", fmt.Errorf("folder-wait reply: %d trailing bytes", len(rest))
	case len(msg) > maxFlushMsg:
		return 0, "", fmt.Errorf("folder-wait reply: message of %d bytes, limit %d", len(msg), maxFlushMsg)
	case code > flushFailed:
		return 0, "", fmt.Errorf("folder-wait reply: unknown code %d", code)
	}
	return code, strings.ToValidUTF8(string(msg), "?"), nil
}

// serveFlush is the server side of ProtoFolderWait on one stream: read the
// request, run do, write the reply.
func serveFlush(rw io.ReadWriter, do func(syncproto.ObjectID) (byte, string)) error {
	rd := wire.NewReader(rw)
	defer rd.Release()
	typ, payload, err := rd.ReadFrame(maxFlushReq)
	if err != nil {
		return fmt.Errorf("read folder-wait request: %w", err)
	}
	if typ != msgFlushReq {
		return fmt.Errorf("folder-wait request: frame type %d, want %d", typ, msgFlushReq)
	}
	id, err := decodeFlushReq(payload)
	if err != nil {
		return err
	}
	code, msg := do(id)
	return wire.WriteFrame(rw, msgFlushReply, encodeFlushReply(code, msg))
}

func (n *Node) handleFolderWait(s network.Stream) {
	from := s.Conn().RemotePeer()
	defer recoverStream(n.log, from, ProtoFolderWait, s)
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(flushServeTimeout))
	ctx, cancel := context.WithTimeout(n.runCtx, flushServeTimeout)
	defer cancel()
	err := serveFlush(s, func(id syncproto.ObjectID) (byte, string) { return n.flushFor(ctx, from, id) })
	if err != nil {
		n.log.Warn("folder-wait request", "peer", from.String(), "err", err)
		s.Reset()
	}
}

// flushFor indexes this device's copy of folder id for member from.
func (n *Node) flushFor(ctx context.Context, from peer.ID, id syncproto.ObjectID) (byte, string) {
	if n.sync.Object(id) == nil {
		return flushNotSynced, ""
	}
	if n.folderRole(id, from) == syncproto.RoleNone {
		return flushRefused, "no role in this folder"
	}
	lf := n.folders.get(id)
	if lf == nil {
		return flushNotSynced, ""
	}
	if err := lf.flush(ctx); err != nil {
		return flushFailed, err.Error()
	}
	return flushIndexed, ""
}

// flush runs a full scan of lf for a folder-wait request that arrived now,
// unless a scan that started after it has completed meanwhile: requests
// that come together share their scans (at most two run for any number).
func (lf *localFolder) flush(ctx context.Context) error {
	arrived := time.Now()
	lf.flushMu.Lock()
	defer lf.flushMu.Unlock()
	if lf.flushed.After(arrived) {
		return nil
	}
	start := time.Now()
	if err := lf.f.Scan(ctx); err != nil {
		return err
	}
	lf.flushed = start
	return nil
}

// folderRole is p's role in the replica of object id (none if unknown).
func (n *Node) folderRole(id syncproto.ObjectID, p peer.ID) syncproto.Role {
	role := syncproto.RoleNone
	_ = n.sync.View(id, func(o *syncproto.Object) error {
		role = o.Role(syncproto.DeviceID(p.String()))
		return nil
	})
	return role
}

// askFlush asks p to index folder id and returns its reply.
func (n *Node) askFlush(ctx context.Context, p peer.ID, id syncproto.ObjectID) (byte, string, error) {
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "folder-wait"), p, ProtoFolderWait)
	if err != nil {
		return 0, "", err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := wire.WriteFrame(s, msgFlushReq, encodeFlushReq(id)); err != nil {
		s.Reset()
		return 0, "", err
	}
	_ = s.CloseWrite()
	rd := wire.NewReader(s)
	defer rd.Release()
	typ, payload, err := rd.ReadFrame(maxFlushReply)
	if err != nil {
		s.Reset()
		return 0, "", err
	}
	if typ != msgFlushReply {
		s.Reset()
		return 0, "", fmt.Errorf("folder-wait reply: frame type %d, want %d", typ, msgFlushReply)
	}
	return decodeFlushReply(payload)
}

// --- the rule ----------------------------------------------------------------

// syncView is what the in-sync rule looks at for one folder here.
type syncView struct {
	Fraction     float64 // the folder's content present here (folder.Status.InSync)
	Transferring int
	Pending      bool // received changes not applied yet
	Indexing     bool // local changes not indexed yet (folder.Indexing)
	Unavailable  int  // current versions whose content no online member had (folder.Unavailable)
	Peers        []peerView
}

// peerView is one member with a role in the folder.
type peerView struct {
	Name     string
	Online   bool
	CaughtUp bool // a round since it connected
	Reached  bool // a round since this daemon started
	// Connecting: not connected, but a dial may yet reach it (reaching):
	// it is not counted as offline, and the folder not as in sync.
	Connecting bool
}

// verdict applies the rule: inSync is 1 only when nothing is behind; when
// the content is all here but something else is behind, it is at most
// 0.99. offline names the members not waited for.
func (v syncView) verdict() (inSync float64, behind, offline []string) {
	if v.Indexing {
		behind = append(behind, "indexing local changes")
	}
	if v.Pending {
		behind = append(behind, "applying received changes")
	}
	if v.Transferring > 0 {
		behind = append(behind, fmt.Sprintf("receiving %d files", v.Transferring))
	}
	switch {
	case v.Unavailable > 0:
		behind = append(behind, fmt.Sprintf("content of %d files unavailable from every online member", v.Unavailable))
	case v.Fraction < 1 && v.Transferring == 0 && !v.Pending:
		behind = append(behind, "content missing here")
	}
	reached := false
	for _, p := range v.Peers {
		reached = reached || p.Reached
		switch {
		case p.Online && p.CaughtUp:
		case p.Online:
			behind = append(behind, "catching up with "+p.Name)
		case p.Connecting:
			behind = append(behind, "connecting to "+p.Name)
		default:
			offline = append(offline, p.Name)
		}
	}
	if !reached && len(offline) > 0 {
		// Its members may hold changes it has not heard of.
		behind = append(behind, "no member of the folder reached since this daemon started")
	}
	inSync = v.Fraction
	if len(behind) > 0 && inSync > 0.99 {
		inSync = 0.99
	}
	return inSync, behind, offline
}

// folderPeers lists the other members with a role in folder id (storage
// peers excluded), online and offline, in the membership list's order.
func (n *Node) folderPeers(id syncproto.ObjectID) (online, offline []identity.Member) {
	l := n.membership()
	if l == nil {
		return nil, nil
	}
	ms := l.Members()
	roles := make([]syncproto.Role, len(ms))
	_ = n.sync.View(id, func(o *syncproto.Object) error {
		for i, m := range ms {
			roles[i] = o.Role(syncproto.DeviceID(m.ID.String()))
		}
		return nil
	})
	for i, m := range ms {
		if m.ID == n.id || roles[i] == syncproto.RoleNone || n.st.isStoragePeer(m.ID) {
			continue
		}
		if m.Name == "" {
			m.Name = m.ID.ShortString()
		}
		if n.host.Network().Connectedness(m.ID) == network.Connected {
			online = append(online, m)
		} else {
			offline = append(offline, m)
		}
	}
	return online, offline
}

// viewOf builds the rule's input for lf, with fraction and transferring
// from its folder.Status.
func (n *Node) viewOf(lf *localFolder, fraction float64, transferring int) syncView {
	v := syncView{Fraction: fraction, Transferring: transferring, Pending: !lf.idle(), Indexing: lf.f.Indexing(),
		Unavailable: len(lf.f.Unavailable().Files)}
	online, offline := n.folderPeers(lf.conf.ID)
	for _, m := range online {
		_, reached := n.rounds.last(m.ID)
		v.Peers = append(v.Peers, peerView{Name: m.Name, Online: true, CaughtUp: n.rounds.caughtUp(m.ID), Reached: reached})
	}
	for _, m := range offline {
		_, reached := n.rounds.last(m.ID)
		v.Peers = append(v.Peers, peerView{Name: m.Name, Reached: reached, Connecting: n.reaching(m.ID)})
	}
	return v
}

// --- wait ------------------------------------------------------------------

// WaitResult is the answer of GET /v1/folders/{name}/wait.
type WaitResult struct {
	Name      string      `json:"name"`
	WaitedMS  int64       `json:"waited_ms"`
	Peers     []string    `json:"peers"`      // members that indexed and synced with this device
	NotWaited []NotWaited `json:"not_waited"` // members with a role in the folder that were not waited for
}

// NotWaited is a member wait did not wait for, and why.
type NotWaited struct {
	Device string `json:"device"`
	ID     string `json:"id"`
	Why    string `json:"why"` // "offline", or "no answer: ..."
}

// WaitFolder returns when the folder here holds every change written on an
// online member before it was called: local changes scanned and pushed,
// each online member of the folder asked to index its copy and then synced
// with both ways, and everything received applied with its content present
// and indexed. Members offline or not answering within waitPeerTimeout
// (or half the time ctx leaves) are listed in the result, not waited for.
func (n *Node) WaitFolder(ctx context.Context, name string) (WaitResult, error) {
	start := time.Now()
	res := WaitResult{Name: name, Peers: []string{}, NotWaited: []NotWaited{}}
	lf, err := n.awaitFolderStart(ctx, name)
	if err != nil {
		return res, err
	}
	if err := lf.f.Scan(ctx); err != nil {
		return res, fmt.Errorf("wait %q: scan: %w", name, err)
	}
	// A member gets waitPeerTimeout, or half of what is left of the
	// caller's time: then a member that does not answer is named, not the
	// cause of a timeout.
	bound := waitPeerTimeout
	if dl, ok := ctx.Deadline(); ok {
		bound = min(bound, time.Until(dl)/2)
	}
	online, offline := n.awaitConnecting(ctx, lf.conf.ID, min(bound, dialTimeout+time.Second))
	for _, m := range offline {
		res.NotWaited = append(res.NotWaited, NotWaited{Device: m.Name, ID: m.ID.String(), Why: "offline"})
	}
	whys := make([]string, len(online))
	var wg sync.WaitGroup
	for i, m := range online {
		wg.Go(func() { whys[i] = n.waitMember(ctx, lf.conf.ID, m.ID, bound) })
	}
	wg.Wait()
	var failed []string
	for i, m := range online {
		switch whys[i] {
		case "":
			res.Peers = append(res.Peers, m.Name)
		case "-": // does not sync the folder
		default:
			res.NotWaited = append(res.NotWaited, NotWaited{Device: m.Name, ID: m.ID.String(), Why: whys[i]})
			failed = append(failed, m.Name+" ("+whys[i]+")")
		}
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("wait %q: %w", name, err)
	}
	if len(failed) > 0 && len(res.Peers) == 0 {
		return res, fmt.Errorf("wait %q: no sync round with any online member: %s", name, strings.Join(failed, ", "))
	}
	n.st.round(ctx, true) // push to, merge from and upload to the storage peers
	lf.unpark(true)       // content no member had: try once more, with who is online now
	sort.Strings(res.Peers)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		// The idle check is cheap; a full status copies every item, so it
		// is computed only once nothing is pending.
		if lf.idle() && !lf.f.Indexing() {
			st := lf.f.Status()
			if len(st.Transferring) == 0 && st.InSync >= 1 {
				res.WaitedMS = time.Since(start).Milliseconds()
				return res, nil // parked conflict copies (superseded content) do not count
			}
			if err := unavailableErr(name, lf, st); err != nil {
				return res, err
			}
		}
		select {
		case <-ctx.Done():
			st := lf.f.Status()
			return res, fmt.Errorf("wait %q: %w (in sync %.0f%%, %d transferring, indexing %v, applying %v)",
				name, ctx.Err(), 100*st.InSync, len(st.Transferring), lf.f.Indexing(), !lf.idle())
		case <-t.C:
		}
	}
}

// awaitConnecting returns folder id's members online and offline, once
// no member that is not connected is still being reached (a dial under
// way, or addresses just learnt), or after bound: a wait right after a
// restart waits for the members it is dialling rather than naming them
// offline.
func (n *Node) awaitConnecting(ctx context.Context, id syncproto.ObjectID, bound time.Duration) (online, offline []identity.Member) {
	deadline := time.Now().Add(bound)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		online, offline = n.folderPeers(id)
		connecting := false
		for _, m := range offline {
			connecting = connecting || n.reaching(m.ID)
		}
		if !connecting || !time.Now().Before(deadline) {
			return online, offline
		}
		select {
		case <-ctx.Done():
			return online, offline
		case <-t.C:
		}
	}
}

// waitTries is how many rounds wait tries with a member before it names
// the member as not waited for; waitRetryDelay is the pause after the
// first failed round, doubled after each. A round fails for a while, for
// example, with a member that has not learnt yet of a device that just
// joined: the membership entry reaches it within moments (pullMembership).
const (
	waitTries      = 4
	waitRetryDelay = 250 * time.Millisecond
)

// waitMember runs wait's rounds with member p within bound: it returns
// "" when a round succeeded, "-" when p does not sync the folder, else why
// p is not waited for (the last round's failure).
func (n *Node) waitMember(ctx context.Context, id syncproto.ObjectID, p peer.ID, bound time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	delay := waitRetryDelay
	for try := 1; ; try++ {
		why := n.waitRound(ctx, id, p, bound)
		if why == "" || why == "-" || ctx.Err() != nil {
			return why
		}
		if try == waitTries {
			return fmt.Sprintf("%s (%d tries)", why, try)
		}
		n.log.Info("wait: round with member failed, trying again", "peer", p.String(), "try", try, "why", why)
		n.schedulePush() // exchange membership: either side may lack an entry
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return why
		case <-t.C:
		}
		delay *= 2
	}
}

// waitRound asks p to index folder id and then syncs with it, once. It
// returns "" when done, "-" when p does not sync the folder, else why the
// round failed. ctx bounds it (bound is that limit, for the message).
func (n *Node) waitRound(ctx context.Context, id syncproto.ObjectID, p peer.ID, bound time.Duration) string {
	start := time.Now()
	code, msg, err := n.askFlush(ctx, p, id)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Sprintf("no answer within %s", bound.Round(time.Millisecond))
	case err != nil:
		// An older meshd has no folder-wait: its replica still counts.
		if serr := n.sync.Sync(ctx, p); serr == nil {
			n.rounds.record(p, start)
		}
		return "no answer: " + err.Error()
	case code == flushNotSynced:
		// No copy there, but its replica may hold others' changes.
		if serr := n.sync.Sync(ctx, p); serr == nil {
			n.rounds.record(p, start)
		}
		return "-"
	case code == flushRefused:
		return "refused: " + msg
	case code == flushFailed:
		// It could not index; what it has indexed still counts.
		n.log.Warn("wait: member could not index", "peer", p.String(), "err", msg)
	}
	if err := n.sync.Sync(ctx, p); err != nil {
		if ctx.Err() != nil {
			return fmt.Sprintf("no sync round within %s", bound.Round(time.Millisecond))
		}
		return "no sync round: " + err.Error()
	}
	n.rounds.record(p, start)
	if code == flushFailed {
		return "could not index: " + msg
	}
	return ""
}

// String is the line 'mesh folder wait' prints (node/cli).
func (r WaitResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: in sync", r.Name)
	if len(r.Peers) > 0 {
		fmt.Fprintf(&b, " with %s", strings.Join(r.Peers, ", "))
	}
	if len(r.NotWaited) > 0 {
		parts := make([]string, len(r.NotWaited))
		for i, nw := range r.NotWaited {
			parts[i] = nw.Device + " (" + nw.Why + ")"
		}
		fmt.Fprintf(&b, "; not waited for: %s", strings.Join(parts, ", "))
	}
	return b.String()
}

// unavailableErr is WaitFolder's answer when the folder is idle but
// current versions' content is missing because no online member had it
// (the items are parked, retried later): nil if none is.
func unavailableErr(name string, lf *localFolder, st folder.Status) error {
	if len(st.Transferring) > 0 || st.InSync >= 1 {
		return nil
	}
	files := lf.f.Unavailable().Files
	if len(files) == 0 {
		return nil
	}
	list := files
	if len(list) > 10 {
		list = list[:10]
	}
	return fmt.Errorf("wait %q: content of %d files unavailable from every online member (in sync %.0f%%): %s",
		name, len(files), 100*st.InSync, strings.Join(list, ", "))
}
