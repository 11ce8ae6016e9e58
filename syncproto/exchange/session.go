package exchange

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/internal/framebuf"
	"github.com/meshwork/meshwork/syncproto"
)

// Bounds on what one session may make the receiver hold.
const (
	maxSessionHeads    = 1 << 16 // announced objects
	maxSessionRequests = 1 << 16 // requests
	maxSessionSummary  = 1 << 21 // summary entries of one request
)

// stream is what a session needs of its network.Stream (a fake one in the
// fuzz tests).
type stream interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	Close() error
	Reset() error
}

// session is one stream: four half-duplex phases (see doc.go). Only one
// side writes at a time.
type session struct {
	e     *Engine
	peer  peer.ID
	dev   syncproto.DeviceID
	st    stream
	scope framebuf.Scope // the stream's resource scope, for frame memory; nil: none
	r     *bufio.Reader
	w     *bufio.Writer
	log   *slog.Logger

	// Read from the peer.
	heads     []head
	reply     bool
	pending   map[syncproto.ObjectID]*request // requests with More set
	requests  []*request                      // complete, in arrival order
	requested map[syncproto.ObjectID]bool     // objects of pending and requests

	// What this side asked for.
	asked map[syncproto.ObjectID]*asked
}

type asked struct {
	full    bool // a full reconciliation: the cursor may go back
	stopped bool // a change was refused for now (clock skew): ignore the rest
}

func (e *Engine) newSession(p peer.ID, st stream) *session {
	return &session{
		e:         e,
		peer:      p,
		dev:       syncproto.DeviceID(p.String()),
		st:        st,
		scope:     framebuf.ScopeOf(st),
		r:         bufio.NewReaderSize(st, 64<<10),
		w:         bufio.NewWriterSize(st, 64<<10),
		log:       e.log.With("peer", p.ShortString()),
		pending:   make(map[syncproto.ObjectID]*request),
		requested: make(map[syncproto.ObjectID]bool),
		asked:     make(map[syncproto.ObjectID]*asked),
	}
}

// initiate runs a session with p as its initiator: it announces ids (those
// of them shared with p) and, when reply is set, asks p to announce its
// own objects.
func (e *Engine) initiate(ctx context.Context, p peer.ID, ids []syncproto.ObjectID, reply bool) (err error) {
	heads := e.heads(p, ids)
	if len(heads) == 0 && !reply {
		return nil
	}
	e.c.sessionsStarted.Add(1)
	st, err := e.host.NewStream(network.WithAllowLimitedConn(ctx, "meshwork sync"), p, ProtocolID)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	defer e.recoverStream(p, st, "initiator", &err)
	s := e.newSession(p, st)
	err = s.initiate(heads, reply)
	s.finish(err)
	return err
}

func (s *session) initiate(heads []head, reply bool) error {
	// Phase 1: ANNOUNCE* END.
	if err := s.writeAnnounce(heads, reply); err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	// Phase 2: the responder's REQUEST* and, if asked, ANNOUNCE*.
	if err := s.readPhase(msgRequest, msgAnnounce); err != nil {
		return err
	}
	// Phase 3: CHANGES for its requests, then REQUEST* for what it announced.
	if err := s.serve(); err != nil {
		return err
	}
	if err := s.writeRequests(); err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	// Phase 4: CHANGES for those requests.
	return s.readPhase(msgChanges)
}

// handle serves a stream opened by a peer: the responder's side.
func (e *Engine) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	if !e.cfg.Members.IsMember(p) {
		e.c.streamsRefused.Add(1)
		e.log.Info("refused sync stream from non-member", "peer", p.ShortString())
		st.Reset()
		return
	}
	if !e.track() {
		st.Reset()
		return
	}
	defer e.wg.Done()
	e.c.sessionsServed.Add(1)
	stop := context.AfterFunc(e.ctx, func() { st.Reset() })
	defer stop()
	defer e.recoverStream(p, st, "responder", nil)
	e.serve(p, st)
}

// serve runs the responder's side of a session on st, from member p.
func (e *Engine) serve(p peer.ID, st stream) {
	s := e.newSession(p, st)
	s.finish(s.respond())
}

// recoverStream is the backstop of a session's goroutine: a panic (a bug
// reachable from the wire) is logged with the peer and the stack, the
// stream is reset, the session fails with ErrProtocol (in *errp, if not
// nil) and the daemon keeps running. It must be deferred directly.
func (e *Engine) recoverStream(p peer.ID, st stream, side string, errp *error) {
	v := recover()
	if v == nil {
		return
	}
	if errp != nil {
		*errp = fmt.Errorf("session panicked: %v: %w", v, ErrProtocol)
	}
	e.c.panics.Add(1)
	e.log.Error("sync session panicked", "peer", p.String(), "protocol", ProtocolID, "side", side,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	st.Reset()
}

func (s *session) respond() error {
	if err := s.readPhase(msgAnnounce); err != nil {
		return err
	}
	if err := s.writeRequests(); err != nil {
		return err
	}
	if s.reply {
		if err := s.writeAnnounce(s.e.heads(s.peer, s.e.sharedWith(s.peer)), false); err != nil {
			return err
		}
	}
	if err := s.end(); err != nil {
		return err
	}
	if err := s.readPhase(msgChanges, msgRequest); err != nil {
		return err
	}
	if err := s.serve(); err != nil {
		return err
	}
	return s.end()
}

// finish closes the stream after a session, or reports a failure: a
// protocol violation gets an ERROR frame and the stream is closed; any
// other failure resets it.
func (s *session) finish(err error) {
	if err == nil {
		s.st.Close()
		return
	}
	if errors.Is(err, framebuf.ErrMemory) {
		s.log.Warn("sync stream reset: frame memory refused", "peer", s.peer.String(), "err", err)
	} else {
		s.log.Debug("sync session failed", "err", err)
	}
	if errors.Is(err, errFrame) || errors.Is(err, ErrProtocol) {
		// Closed, not reset: a reset would discard the ERROR frame.
		if s.write(msgError, errorMsg{Code: codeBadRequest, Text: truncate(err.Error(), maxErrorText)}.encode()) == nil && s.flush() == nil {
			s.st.Close()
			return
		}
	}
	s.st.Reset()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *session) write(typ byte, payload []byte) error {
	s.st.SetWriteDeadline(time.Now().Add(s.e.cfg.IOTimeout))
	return writeFrame(s.w, typ, payload)
}

func (s *session) flush() error {
	s.st.SetWriteDeadline(time.Now().Add(s.e.cfg.IOTimeout))
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// end writes END and flushes: the end of this side's phase.
func (s *session) end() error {
	if err := s.write(msgEnd, nil); err != nil {
		return err
	}
	return s.flush()
}

// heads returns the announce heads of the objects among ids that p is a
// member of, in ID order.
func (e *Engine) heads(p peer.ID, ids []syncproto.ObjectID) []head {
	d := syncproto.DeviceID(p.String())
	var out []head
	for _, id := range ids {
		r := e.replica(id)
		if r == nil || r.obj.Role(d) == syncproto.RoleNone {
			continue
		}
		r.mu.Lock() // only persisted heads
		out = append(out, head{Object: id, Epoch: r.obj.Epoch(), Head: r.obj.Head()})
		r.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b head) int { return strings.Compare(string(a.Object), string(b.Object)) })
	return out
}

func (s *session) writeAnnounce(heads []head, reply bool) error {
	for first := true; first || len(heads) > 0; first = false {
		n := min(len(heads), maxAnnounceHeads)
		a := announce{Reply: reply, Heads: heads[:n]}
		heads = heads[n:]
		if err := s.write(msgAnnounce, a.encode()); err != nil {
			return err
		}
		s.e.c.announcesSent.Add(1)
	}
	return nil
}

// readPhase reads the peer's frames up to END, accepting the given types.
// Each frame's memory is reserved in the stream's scope while it is
// handled. Every frame must arrive within IOTimeout of the previous one
// (a stall mid-frame ends the session).
func (s *session) readPhase(allowed ...byte) error {
	for {
		s.st.SetReadDeadline(time.Now().Add(s.e.cfg.IOTimeout))
		typ, p, err := readFrameIn(s.r, s.scope)
		if err != nil {
			return err
		}
		done, err := s.onFrame(typ, p.B, allowed)
		p.Release()
		if err != nil || done {
			return err
		}
	}
}

// onFrame handles one frame of a phase; done at END.
func (s *session) onFrame(typ byte, p []byte, allowed []byte) (done bool, err error) {
	switch typ {
	case msgEnd:
		if len(s.pending) > 0 {
			return false, fmt.Errorf("phase ended inside a request summary: %w", ErrProtocol)
		}
		return true, nil
	case msgError:
		m, err := decodeError(p)
		if err != nil {
			return false, err
		}
		return false, fmt.Errorf("peer error %d: %q: %w", m.Code, m.Text, ErrRefused)
	}
	if !slices.Contains(allowed, typ) {
		return false, fmt.Errorf("unexpected message %#x: %w", typ, ErrProtocol)
	}
	switch typ {
	case msgAnnounce:
		a, err := decodeAnnounce(p)
		if err != nil {
			return false, err
		}
		if len(s.heads)+len(a.Heads) > maxSessionHeads {
			return false, fmt.Errorf("more than %d objects announced: %w", maxSessionHeads, ErrProtocol)
		}
		s.reply = s.reply || a.Reply
		s.heads = append(s.heads, a.Heads...)
	case msgRequest:
		q, err := decodeRequest(p)
		if err != nil {
			return false, err
		}
		return false, s.addRequest(q)
	case msgChanges:
		c, err := syncproto.DecodeChanges(p)
		if err != nil {
			return false, fmt.Errorf("%w: %w", errFrame, err)
		}
		return false, s.apply(c)
	}
	return false, nil
}

func (s *session) addRequest(q request) error {
	if pend := s.pending[q.Object]; pend != nil {
		if len(pend.Summary)+len(q.Summary) > maxSessionSummary {
			return fmt.Errorf("request of %q: summary over %d items: %w", q.Object, maxSessionSummary, ErrProtocol)
		}
		if q.Cursor != pend.Cursor {
			return fmt.Errorf("request of %q: cursor changed inside a summary: %w", q.Object, ErrProtocol)
		}
		if len(q.Summary) > 0 && len(pend.Summary) > 0 && q.Summary[0].Item <= pend.Summary[len(pend.Summary)-1].Item {
			return fmt.Errorf("request of %q: summary out of order: %w", q.Object, ErrProtocol)
		}
		pend.Summary = append(pend.Summary, q.Summary...)
		pend.More = q.More
	} else {
		if s.requested[q.Object] {
			return fmt.Errorf("request of %q twice: %w", q.Object, ErrProtocol)
		}
		if len(s.requested) >= maxSessionRequests {
			return fmt.Errorf("more than %d requests: %w", maxSessionRequests, ErrProtocol)
		}
		s.requested[q.Object] = true
		c := q
		s.pending[q.Object] = &c
	}
	if pend := s.pending[q.Object]; !pend.More {
		delete(s.pending, q.Object)
		s.requests = append(s.requests, pend)
	}
	return nil
}

func digestOf(enc []byte) digest {
	sum := sha256.Sum256(enc)
	return digest(sum[:digestLen])
}

// writeRequests asks for the changes of the objects the peer announced
// that this side lacks. Changes are taken only from peers that may write to
// the object: a reader's announcements are ignored (and a replica refuses
// versions authored by readers, whoever relays them). A cursor of another
// epoch than the announced one, or beyond the announced head, means the
// peer's log was lost or rolled back: the request is then a full
// reconciliation (zero cursor) carrying a summary of the items held, so
// that only the items that differ travel.
func (s *session) writeRequests() error {
	for _, h := range s.heads {
		if s.asked[h.Object] != nil {
			continue
		}
		r := s.e.replica(h.Object)
		if r == nil {
			s.log.Debug("announced object not held here", "object", h.Object)
			continue
		}
		if !r.obj.CanWrite(s.dev) {
			s.log.Debug("not taking changes from a peer that may not write", "object", h.Object, "role", r.obj.Role(s.dev))
			continue
		}
		cur := r.obj.Cursor(s.dev)
		if cur.Epoch == h.Epoch && cur.Seq == h.Head {
			continue
		}
		q := request{Object: h.Object}
		full := cur.Epoch != h.Epoch || cur.Seq > h.Head
		if !full {
			q.Cursor = cur
		} else if h.Head > 0 {
			q.Summary = summary(r.obj)
		}
		s.asked[h.Object] = &asked{full: full}
		if full {
			s.log.Debug("full reconciliation", "object", h.Object, "cursor", cur, "announced_epoch", h.Epoch, "announced_head", h.Head)
			s.e.c.fullRequestsSent.Add(1)
		}
		s.e.c.requestsSent.Add(1)
		sum := q.Summary
		for first := true; first || len(sum) > 0; first = false {
			n := min(len(sum), maxSummary)
			q.Summary, sum = sum[:n], sum[n:]
			q.More = len(sum) > 0
			if err := s.write(msgRequest, q.encode()); err != nil {
				return err
			}
		}
	}
	return nil
}

// summary lists the digests of the items of o, in ID order.
func summary(o *syncproto.Object) []summaryEntry {
	items := o.Items()
	out := make([]summaryEntry, len(items))
	for i, it := range items {
		out[i] = summaryEntry{Item: it.Sync.ID, Digest: digestOf(syncproto.EncodeItem(it))}
	}
	return out
}

// serve answers the peer's requests with CHANGES frames. Each frame is a
// syncproto.Changes whose Head is the sequence of its last change (the
// last frame: the log's head), so the peer's cursor advances frame by
// frame. Objects the peer is not a member of are skipped.
func (s *session) serve() error {
	for _, q := range s.requests {
		if err := s.serveOne(q); err != nil {
			return err
		}
	}
	s.requests = nil
	return nil
}

func (s *session) serveOne(q *request) error {
	r := s.e.replica(q.Object)
	if r == nil || r.obj.Role(s.dev) == syncproto.RoleNone {
		s.log.Debug("request for an object not shared with the peer", "object", q.Object)
		return nil
	}
	s.e.c.requestsServed.Add(1)
	// Under r.mu: every change this lists is persisted, so no peer ever
	// holds a sequence number a crash could reuse.
	r.mu.Lock()
	c, err := r.obj.ChangesSince(q.Cursor)
	if errors.Is(err, syncproto.ErrEpochMismatch) {
		c, err = r.obj.ChangesSince(syncproto.Cursor{})
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("serve %q since %v: %w", q.Object, q.Cursor, err)
	}
	have := make(map[syncproto.ItemID]digest, len(q.Summary))
	for _, e := range q.Summary {
		have[e.Item] = e.Digest
	}
	var chunk []syncproto.Change
	size := 0
	flush := func(head uint64) error {
		b := syncproto.EncodeChanges(syncproto.Changes{Object: c.Object, Epoch: c.Epoch, Head: head, Changes: chunk})
		if err := s.write(msgChanges, b); err != nil {
			return err
		}
		s.e.c.changesSent.Add(int64(len(chunk)))
		chunk, size = nil, 0
		return nil
	}
	limit := MaxFrameSize - 64 - len(c.Object)
	for _, ch := range c.Changes {
		enc := syncproto.EncodeItem(ch.Item)
		if d, ok := have[ch.Item.Sync.ID]; ok && d == digestOf(enc) {
			continue
		}
		n := len(enc) + 10
		if n > limit {
			// Cannot be sent in this version (it grew through merges, or
			// predates the size checks): skip it, so that it never blocks
			// the peer's cursor; a later change of it is sent again.
			s.e.c.itemsUnsendable.Add(1)
			s.log.Error("item too large to send, skipped", "object", q.Object, "item", ch.Item.Sync.ID,
				"bytes", n, "limit", limit, "peer", s.peer)
			continue
		}
		if size+n > changesTarget && len(chunk) > 0 {
			if err := flush(chunk[len(chunk)-1].Seq); err != nil {
				return err
			}
		}
		chunk = append(chunk, ch)
		size += n
	}
	return flush(c.Head)
}

// apply applies a CHANGES frame to the replica, advances the cursor of the
// peer's log, persists, pushes what changed to the other peers (and back
// to this one when the merge made something it does not hold) and calls
// OnChange.
func (s *session) apply(c syncproto.Changes) error {
	a := s.asked[c.Object]
	if a == nil {
		return fmt.Errorf("changes of %q not asked for: %w", c.Object, ErrProtocol)
	}
	if a.stopped {
		return nil
	}
	r := s.e.replica(c.Object)
	if r == nil {
		return nil
	}
	s.e.c.changesReceived.Add(int64(len(c.Changes)))
	changed, echo, err := s.merge(r, a, c)
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	s.e.c.itemsChanged.Add(int64(len(changed)))
	skip := s.peer
	if echo {
		skip = ""
	}
	s.e.markDirty(c.Object, skip, false)
	if f := s.e.cfg.OnChange; f != nil {
		f(c.Object, changed)
	}
	return nil
}

// merge applies c's changes to r under r's lock, advances the peer's
// cursor and persists. The lock is released by a defer, so that a panic
// in a merge (recovered by the session's backstop) cannot leave the
// replica locked for every later session. It returns the items that
// changed and whether one of them differs from what the peer sent (the
// peer must then get it back).
func (s *session) merge(r *replica, a *asked, c syncproto.Changes) (changed []syncproto.Item, echo bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := c.Head
	for _, ch := range c.Changes {
		ok, res, err := r.obj.ApplyFrom(s.dev, ch.Item)
		if err != nil {
			s.e.c.itemsRefused.Add(1)
			if errors.Is(err, syncproto.ErrBadSignature) {
				s.e.c.badSignatures.Add(1)
				s.log.Warn("change refused: bad version signature", "object", c.Object, "item", ch.Item.Sync.ID, "err", err)
				continue
			}
			s.log.Info("change refused", "object", c.Object, "item", ch.Item.Sync.ID, "err", err)
			if errors.Is(err, syncproto.ErrClockSkew) {
				// Ask for it again next time.
				seq, a.stopped = ch.Seq-1, true
				break
			}
			continue
		}
		if ok {
			changed = append(changed, res)
			echo = echo || !res.Equal(ch.Item)
		}
	}
	next := syncproto.Cursor{Epoch: c.Epoch, Seq: seq}
	cur := r.obj.Cursor(s.dev)
	moved := next != cur && (a.full || cur.Epoch != next.Epoch || next.Seq > cur.Seq)
	if moved {
		r.obj.SetCursor(s.dev, next)
	}
	if moved || len(changed) > 0 {
		err = s.e.save(r)
	}
	return changed, echo, err
}
