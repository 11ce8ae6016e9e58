package localapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/meshwork/meshwork/node"
)

// eventCore is what the events handler asks of the core.
type eventCore interface {
	Events(lastEventID, viewing string) (*node.EventStream, error)
}

type eventAPI struct{ c eventCore }

// stream is GET /api/v1/events: Server-Sent Events (node/API.md), from
// Last-Event-ID on; ?objects=A,B keeps the change and folder events of
// those objects only; ?viewing=FOLDER counts this client in the presence.
func (a *eventAPI) stream(w http.ResponseWriter, r *http.Request) {
	w = streaming(w, r) // no whole-request timeout; each write within streamStall (pings every 15 s)
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("events: streaming not supported"))
		return
	}
	want := map[string]bool{}
	if s := r.URL.Query().Get("objects"); s != "" {
		for _, o := range strings.Split(s, ",") {
			want[strings.TrimSpace(o)] = true
		}
	}
	es, err := a.c.Events(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("viewing"))
	if err != nil {
		fail(w, err)
		return
	}
	defer es.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(es.Start()))
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		evs, wake := es.Next()
		for _, e := range evs {
			if len(want) > 0 && (e.Type == "change" || e.Type == "folder") && !want[e.Object] {
				continue
			}
			_, _ = w.Write([]byte(es.Format(e)))
		}
		if len(evs) > 0 {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-es.Stopped():
			return
		case <-wake:
		case <-ping.C:
			_, _ = w.Write([]byte(": ping\n\n"))
			fl.Flush()
		}
	}
}
