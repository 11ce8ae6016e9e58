package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/meshwork/meshwork/identity"
	"github.com/meshwork/meshwork/node/internal/wire"
)

// ProtoMembership pushes this device's view of the mesh to a member.
//
// Version history: 1.0.0 — first version.
//
// The initiator writes one frame and closes its write side; the responder
// answers with one frame of its own state, so that one exchange updates
// both sides:
//
//	type 1 (state):
//	  uvarint len, identity.Log encoding (the whole signed log)
//	  uvarint count, then count × (uvarint len, signed peer record envelope)
//
// Peer records are libp2p's signed address records (record.Envelope of a
// peer.PeerRecord), forwarded unchanged as identify delivered them. The
// receiver checks each signature and that the signing key is the key of
// the peer the record names, and keeps only records of members. The receiver verifies the log completely (identity.DecodeLog)
// before merging it; entries it already holds are ignored (merge is
// idempotent). A receiver whose log grew pushes it onward, so updates
// spread to members that never meet the author.
//
// Limits: a state frame is at most 8 MiB, read as its bytes arrive with the
// memory reserved in the stream's resource scope (node/internal/wire); the
// whole exchange must finish within 10 s; the resource manager allows a
// peer a few membership streams at a time (resourceLimits).
const ProtoMembership = "/meshwork/membership/1.0.0"

const (
	msgState       = 1
	maxStateSize   = 8 << 20
	maxPeerRecords = 256
	pushTimeout    = 10 * time.Second
	peerRecordTTL  = 24 * time.Hour
)

type stateMsg struct {
	log     []byte
	records [][]byte
}

func encodeState(m stateMsg) []byte {
	b := wire.AppendBytes(nil, m.log)
	b = binary.AppendUvarint(b, uint64(len(m.records)))
	for _, r := range m.records {
		b = wire.AppendBytes(b, r)
	}
	return b
}

func decodeState(b []byte) (stateMsg, error) {
	var m stateMsg
	var err error
	if m.log, b, err = wire.ReadBytes(b); err != nil {
		return m, fmt.Errorf("membership log field: %w", err)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxPeerRecords {
		return m, fmt.Errorf("peer record count: malformed or over %d", maxPeerRecords)
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		var r []byte
		if r, b, err = wire.ReadBytes(b); err != nil {
			return m, fmt.Errorf("peer record %d: %w", i, err)
		}
		m.records = append(m.records, r)
	}
	if len(b) != 0 {
		return m, fmt.Errorf("%d trailing bytes after peer records", len(b))
	}
	return m, nil
}

// stateFor builds the state message sent to peer to.
func (n *Node) stateFor(to peer.ID) ([]byte, bool) {
	l := n.membership()
	if l == nil {
		return nil, false
	}
	msg := stateMsg{log: l.Encode()}
	msg.records = n.members.recordsOf(l.Members(), to, maxPeerRecords)
	n.log.Debug("membership state", "to", to.String(), "entries", l.Len(), "records", len(msg.records))
	return encodeState(msg), true
}

// pushState sends our membership state to one member.
func (n *Node) pushState(ctx context.Context, to peer.ID) error {
	payload, ok := n.stateFor(to)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "membership"), to, ProtoMembership)
	if err != nil {
		return fmt.Errorf("push membership to %s: %w", to.ShortString(), err)
	}
	defer s.Close()
	// The deadline bounds a slow member; a shutdown ends the push at once
	// (it held meshd's exit for up to pushTimeout: chaos soak seed 175).
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(pushTimeout))
	if err := wire.WriteFrame(s, msgState, payload); err != nil {
		s.Reset()
		return fmt.Errorf("push membership to %s: %w", to.ShortString(), err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("push membership to %s: %w", to.ShortString(), err)
	}
	rd := wire.NewReader(s)
	defer rd.Release()
	msg, log, err := readState(rd)
	if err != nil {
		s.Reset()
		return fmt.Errorf("membership reply from %s: %w", to.ShortString(), err)
	}
	return n.processState(msg, log, to)
}

func (n *Node) handleMembership(s network.Stream) {
	from := s.Conn().RemotePeer()
	defer recoverStream(n.log, from, ProtoMembership, s)
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(pushTimeout))
	rd := wire.NewReader(s)
	defer rd.Release()
	msg, log, err := readState(rd)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, wire.ErrMemory) {
			level = slog.LevelError
		}
		n.log.Log(context.Background(), level, "bad membership message", "peer", from.String(), "err", err)
		s.Reset()
		return
	}
	if reply, ok := n.stateFor(from); ok {
		_ = wire.WriteFrame(s, msgState, reply)
	}
	if err := n.processState(msg, log, from); err != nil {
		n.log.Warn("refused membership state", "peer", from.String(), "err", err)
	}
}

// recoverStream is the backstop of a stream handler: a panic (a bug
// reachable from the wire) is logged with the peer, the protocol and the
// stack, and the stream is reset; the daemon keeps running. It must be
// deferred directly.
func recoverStream(log *slog.Logger, from peer.ID, proto string, s interface{ Reset() error }) {
	v := recover()
	if v == nil {
		return
	}
	log.Error("stream handler panicked", "peer", from.String(), "protocol", proto,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.Reset()
}

// readState reads a state frame and verifies what it can without the
// node: the message layout and the log's signatures (identity.DecodeLog).
// The payload's memory stays reserved in rd's stream scope until the
// caller releases rd.
func readState(rd *wire.Reader) (stateMsg, *identity.Log, error) {
	typ, payload, err := rd.ReadFrame(maxStateSize)
	if err != nil {
		return stateMsg{}, nil, fmt.Errorf("read membership state: %w", err)
	}
	if typ != msgState {
		return stateMsg{}, nil, fmt.Errorf("membership message of type %d, want %d", typ, msgState)
	}
	msg, err := decodeState(payload)
	if err != nil {
		return stateMsg{}, nil, err
	}
	l, err := identity.DecodeLog(msg.log)
	if err != nil {
		return stateMsg{}, nil, fmt.Errorf("verify membership log: %w", err)
	}
	return msg, l, nil
}

// processState merges a verified state message from a member.
func (n *Node) processState(msg stateMsg, in *identity.Log, from peer.ID) error {
	if err := n.mergeLog(in, from); err != nil {
		return err
	}
	n.consumePeerRecords(msg.records)
	return nil
}

// mergeLog merges a verified incoming log into ours.
func (n *Node) mergeLog(in *identity.Log, from peer.ID) error {
	return n.members.update(func(cur *identity.Log) (*identity.Log, error) {
		if cur == nil {
			return nil, fmt.Errorf("log from %s: this device is in no mesh", from.ShortString())
		}
		added, err := cur.Merge(in)
		if err != nil {
			return nil, fmt.Errorf("merge log from %s: %w", from.ShortString(), err)
		}
		if added == 0 {
			return nil, nil
		}
		n.log.Info("membership updated", "from", from.String(), "new_entries", added, "members", len(cur.Members()))
		return nil, n.commitLocked(cur)
	})
}

// consumePeerRecords stores signed address records of members.
func (n *Node) consumePeerRecords(recs [][]byte) {
	found := false
	var learnt []peer.ID
	for _, b := range recs {
		pr, err := verifyPeerRecord(b)
		if errors.Is(err, errRecordSigner) {
			n.log.Warn("peer record signed by another key", "err", err)
			continue
		}
		if err != nil {
			n.log.Debug("bad peer record", "err", err)
			continue
		}
		if pr.PeerID == n.id || !n.IsMember(pr.PeerID) {
			continue
		}
		newer := n.members.recordSeq(pr.PeerID) < pr.Seq
		if !n.members.keepRecord(pr.PeerID, b, pr.Seq) {
			continue // an older record than the one kept: its addresses are stale
		}
		n.host.Peerstore().AddAddrs(pr.PeerID, pr.Addrs, peerRecordTTL)
		n.log.Debug("learned member addresses", "peer", pr.PeerID.String(), "addrs", pr.Addrs)
		n.saveAddrs(pr.PeerID)
		found = true
		if newer { // the same record forwarded again says nothing new
			learnt = append(learnt, pr.PeerID)
		}
	}
	for _, p := range learnt {
		n.learntAddrs(p)
	}
	if found {
		n.kickDial()
	}
}

var errRecordSigner = errors.New("signed by another key")

// verifyPeerRecord opens a signed peer record envelope and checks that it
// was signed by the key of the peer it names.
func verifyPeerRecord(b []byte) (*peer.PeerRecord, error) {
	env, rec, err := record.ConsumeEnvelope(b, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return nil, err
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return nil, fmt.Errorf("envelope holds a %T, not a peer record", rec)
	}
	if signer, err := peer.IDFromPublicKey(env.PublicKey); err != nil || signer != pr.PeerID {
		return nil, fmt.Errorf("record for %s: %w", pr.PeerID, errRecordSigner)
	}
	return pr, nil
}

// pushLoop enforces revocations and pushes our state to every connected
// member whenever membership changes.
func (n *Node) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pushAll:
		}
		n.dropRevoked()
		n.memberOnline()
		var wg sync.WaitGroup
		for _, p := range n.host.Network().Peers() {
			if !n.IsMember(p) {
				continue
			}
			n.saveAddrs(p) // a member identified before it (or we) joined
			wg.Add(1)
			go func(p peer.ID) {
				defer wg.Done()
				if err := n.pushState(ctx, p); err != nil {
					n.log.Debug("push failed", "err", err)
				}
			}(p)
		}
		wg.Wait()
	}
}

// pullInterval bounds how often streams refused to non-members make this
// device exchange membership state with its members.
const pullInterval = time.Second

// pullMembership exchanges membership state with every connected member
// (each push is answered with the member's own state) after this device
// refused a stream from a peer it does not know as a member: the peer may
// have just joined, and the entry that admits it not have reached this
// device yet; once it has, the peer's next stream is served. At most once
// per pullInterval, so that a non-member's streams cost little.
func (n *Node) pullMembership() {
	now := n.now().UnixNano()
	last := n.lastPull.Load()
	if now-last < int64(pullInterval) || !n.lastPull.CompareAndSwap(last, now) {
		return
	}
	n.schedulePush()
}
