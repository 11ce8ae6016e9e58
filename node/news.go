package node

// The news stream (newsID): one mesh object, synced to every device, of
// events worth telling the user (a device joined or was revoked, a folder
// changed or cannot be written, a tunnel opened, ...). Part of the objects
// part (objectSet, objects.go): the stream is one of its objects, and it
// owns the stream's waiters.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshwork/meshwork/syncproto"
)

// news appends an event to the mesh's news stream (synced to every
// device) and logs it.
func (s *objectSet) news(kind string, p peer.ID, text string) {
	s.log.Info("news", "kind", kind, "text", text)
	if s.engine == nil || s.engine.Object(newsID) == nil {
		return
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	ids := s.self.String()
	id := syncproto.ItemID(fmt.Sprintf("%s-%d-%s", ids[len(ids)-8:], time.Now().UnixNano(), hex.EncodeToString(rnd[:])))
	body := kind
	if p != "" {
		body += " " + p.String()
	}
	if _, err := s.engine.Update(newsID, id, syncproto.Content{Title: text, Body: syncproto.Text(body)}); err != nil {
		s.log.Warn("write news", "err", err)
	}
	s.newsWake.Broadcast()
}

// NewsEntry is one event of the news stream (GET /v1/news).
type NewsEntry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Text   string    `json:"text"`
	Device string    `json:"device"` // where it happened
	Peer   string    `json:"peer,omitempty"`
}

// newsEntries lists the news stream, oldest first.
func (s *objectSet) newsEntries() []NewsEntry {
	var out []NewsEntry
	if s.engine.Object(newsID) == nil {
		return out
	}
	_ = s.engine.View(newsID, func(o *syncproto.Object) error {
		for _, it := range o.Items() {
			if it.Sync.Deleted {
				continue
			}
			top := it.Sync.Top()
			e := NewsEntry{ID: string(it.Sync.ID), Time: top.When.Time().UTC(), Text: it.Title, Device: s.deviceName(string(top.By))}
			if t, ok := it.Body.(syncproto.Text); ok {
				kind, p, _ := strings.Cut(string(t), " ")
				e.Kind, e.Peer = kind, p
			}
			out = append(out, e)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// News lists the news stream's entries (GET /v1/news), oldest first.
func (n *Node) News() []NewsEntry { return n.objs.newsList() }

// newsList is Node.News.
func (s *objectSet) newsList() []NewsEntry {
	if e := s.newsEntries(); e != nil {
		return e
	}
	return []NewsEntry{}
}

// NewsChanged returns a channel closed at the next change of the news;
// take it before reading News to miss nothing.
func (n *Node) NewsChanged() <-chan struct{} { return n.objs.newsChanged() }

// newsChanged is Node.NewsChanged.
func (s *objectSet) newsChanged() <-chan struct{} { return s.newsWake.wait() }

// newsMerged wakes the news's waiters: a peer's entries were merged
// (onSyncChange).
func (s *objectSet) newsMerged() { s.newsWake.Broadcast() }

// newsWaiter lets GET /v1/news?follow wait for new events without polling.
type newsWaiter struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *newsWaiter) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *newsWaiter) Broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
