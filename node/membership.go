package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
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
	n.mu.Lock()
	for _, m := range l.Members() {
		if r, ok := n.records[m.ID]; ok && m.ID != to && len(msg.records) < maxPeerRecords {
			msg.records = append(msg.records, r)
		}
	}
	n.mu.Unlock()
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
	_ = s.SetDeadline(time.Now().Add(pushTimeout))
	if err := wire.WriteFrame(s, msgState, payload); err != nil {
		s.Reset()
		return fmt.Errorf("push membership to %s: %w", to.ShortString(), err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("push membership to %s: %w", to.ShortString(), err)
	}
	typ, reply, err := wire.ReadFrame(bufio.NewReader(s), maxStateSize)
	if err != nil || typ != msgState {
		return fmt.Errorf("membership reply from %s: type %d: %v", to.ShortString(), typ, err)
	}
	return n.processState(reply, to)
}

func (n *Node) handleMembership(s network.Stream) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(pushTimeout))
	typ, payload, err := wire.ReadFrame(bufio.NewReader(s), maxStateSize)
	if err != nil || typ != msgState {
		n.log.Warn("bad membership message", "peer", from.String(), "type", typ, "err", err)
		s.Reset()
		return
	}
	if reply, ok := n.stateFor(from); ok {
		_ = wire.WriteFrame(s, msgState, reply)
	}
	if err := n.processState(payload, from); err != nil {
		n.log.Warn("refused membership state", "peer", from.String(), "err", err)
	}
}

// processState verifies and merges a state message from a member.
func (n *Node) processState(payload []byte, from peer.ID) error {
	msg, err := decodeState(payload)
	if err != nil {
		return err
	}
	if err := n.mergeLog(msg.log, from); err != nil {
		return err
	}
	n.consumePeerRecords(msg.records)
	return nil
}

// mergeLog verifies an incoming log and merges it into ours.
func (n *Node) mergeLog(data []byte, from peer.ID) error {
	in, err := identity.DecodeLog(data)
	if err != nil {
		return fmt.Errorf("verify log from %s: %w", from.ShortString(), err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mlog == nil {
		return fmt.Errorf("log from %s: this device is in no mesh", from.ShortString())
	}
	added, err := n.mlog.Merge(in)
	if err != nil {
		return fmt.Errorf("merge log from %s: %w", from.ShortString(), err)
	}
	if added == 0 {
		return nil
	}
	n.log.Info("membership updated", "from", from.String(), "new_entries", added, "members", len(n.mlog.Members()))
	return n.commitLocked()
}

// consumePeerRecords stores signed address records of members.
func (n *Node) consumePeerRecords(recs [][]byte) {
	found := false
	for _, b := range recs {
		env, rec, err := record.ConsumeEnvelope(b, peer.PeerRecordEnvelopeDomain)
		if err != nil {
			n.log.Debug("bad peer record", "err", err)
			continue
		}
		pr, ok := rec.(*peer.PeerRecord)
		if !ok || pr.PeerID == n.id || !n.IsMember(pr.PeerID) {
			continue
		}
		if signer, err := peer.IDFromPublicKey(env.PublicKey); err != nil || signer != pr.PeerID {
			n.log.Warn("peer record signed by another key", "record_for", pr.PeerID.String())
			continue
		}
		n.keepRecord(pr.PeerID, b)
		n.host.Peerstore().AddAddrs(pr.PeerID, pr.Addrs, peerRecordTTL)
		n.log.Debug("learned member addresses", "peer", pr.PeerID.String(), "addrs", pr.Addrs)
		n.saveAddrs(pr.PeerID)
		found = true
	}
	if found {
		n.kickDial()
	}
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
