package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// handleAuth serves one membership proof (AuthProtocolID). It is open to
// every peer: that is how non-members become authorised.
func (s *Server) handleAuth(st network.Stream) {
	s.hmu.Lock()
	if s.stopping {
		s.hmu.Unlock()
		_ = st.Reset()
		return
	}
	s.handlers.Add(1)
	s.hmu.Unlock()
	defer s.handlers.Done()

	p := st.Conn().RemotePeer()
	logger := s.logger.With("peer", p, "addr", st.Conn().RemoteMultiaddr())
	if err := st.Scope().SetService(authService); err != nil {
		logger.Debug("auth stream refused by resource manager", "err", err)
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(authTimeout))

	status, msg := s.serveAuth(st, p)
	s.metrics.authRequests.WithLabelValues(status.String()).Inc()
	if status == StatusOK {
		logger.Info("peer authorised", "detail", msg)
	} else {
		logger.Info("membership proof refused", "status", status.String(), "detail", msg)
	}
	if _, err := st.Write(appendResponse(nil, status, msg)); err != nil {
		logger.Debug("write auth response", "err", err)
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// serveAuth reads the request and decides. Reading holds one of a generous
// number of reader slots (a slow peer only delays itself); decoding, which
// checks a signature per log entry, holds one of MaxConcurrentAuth slots.
func (s *Server) serveAuth(st network.Stream, p peer.ID) (Status, string) {
	select {
	case s.authReaders <- struct{}{}:
		defer func() { <-s.authReaders }()
	default:
		return StatusBusy, "too many membership proofs in progress, retry later"
	}
	encoded, err := readRequest(bufio.NewReader(st), s.cfg.Limits.MaxLogSize)
	switch {
	case errors.Is(err, ErrTooLarge):
		return StatusTooLarge, err.Error()
	case err != nil:
		return StatusMalformed, err.Error()
	}
	wait := time.NewTimer(authTimeout / 2)
	defer wait.Stop()
	select {
	case s.authSem <- struct{}{}:
		defer func() { <-s.authSem }()
	case <-wait.C:
		return StatusBusy, "too many membership proofs in progress, retry later"
	case <-s.closing:
		return StatusBusy, "relay is shutting down"
	}
	return s.access.authorise(p, encoded)
}

// Authenticate proves to the relay relayID that h's device is a member of
// the mesh whose encoded, signed membership log (identity Log.Encode) is
// encodedLog. h must be able to reach the relay (connected, or its
// addresses in h's peerstore). Call it before reserving a slot or dialing
// through the relay, and again after every reconnection: the relay
// forgets the authorisation when the last connection to the device closes.
//
// A refusal is an *AuthError, matched by errors.Is(err, ErrRefused).
func Authenticate(ctx context.Context, h host.Host, relayID peer.ID, encodedLog []byte) error {
	if len(encodedLog) == 0 {
		return fmt.Errorf("authenticate to relay %s: %w: empty log", relayID, ErrMalformed)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, authTimeout)
		defer cancel()
	}
	st, err := h.NewStream(ctx, relayID, AuthProtocolID)
	if err != nil {
		return fmt.Errorf("authenticate to relay %s: %w", relayID, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}

	// Write while reading the answer: the relay may refuse early
	// (too_large, busy) without reading a large log, and then the write
	// would block on flow control.
	written := make(chan error, 1)
	go func() {
		_, err := st.Write(appendRequest(nil, encodedLog))
		if err == nil {
			err = st.CloseWrite()
		}
		written <- err
	}()
	status, msg, err := readResponse(bufio.NewReader(st))
	if err != nil || status != StatusOK {
		_ = st.Reset() // unblocks the writer
	}
	werr := <-written
	if err != nil {
		if werr != nil {
			err = fmt.Errorf("send log of %d bytes: %w", len(encodedLog), werr)
		}
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("authenticate to relay %s: %w", relayID, err)
	}
	_ = st.Close()
	if status != StatusOK {
		return fmt.Errorf("authenticate to relay %s: %w", relayID, &AuthError{Status: status, Message: msg})
	}
	return nil
}
