package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
)

// events streams changes as server-sent events. The first event is
// "hello" with the snapshot's revision and staleness; with kinds=routing
// every current route follows as a "routing" event, so a load balancer can
// start from the stream alone. Then every change of the selected kinds
// (default all) is sent as an event named by its kind, with the stored JSON
// as data and the store revision as id.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("too many event streams (%d)", s.cfg.MaxStreams))
		return
	}
	kinds := map[string]bool{}
	for _, k := range strings.Split(r.URL.Query().Get("kinds"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds[k] = true
		}
	}
	want := func(k string) bool { return len(kinds) == 0 || kinds[k] || k == view.KindStore }

	ctx := r.Context()
	sub := s.state.Subscribe(ctx)
	snap, err := s.state.Snapshot(ctx)
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.m.streams.Inc()
	defer s.m.streams.Dec()

	send := func(id int64, event string, data any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
			return err
		}
		var b []byte
		switch v := data.(type) {
		case []byte:
			b = v
		default:
			if b, err = json.Marshal(v); err != nil {
				return err
			}
		}
		if id > 0 {
			fmt.Fprintf(w, "id: %d\n", id)
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	hello := map[string]any{"node": snap.Node, "revision": snap.Revision, "stale": snap.Stale, "leader": snap.Leader}
	if snap.Stale {
		hello["staleSince"] = snap.StaleSince
	}
	if err := send(snap.Revision, "hello", hello); err != nil {
		return
	}
	if kinds[view.KindRouting] {
		for _, sv := range snap.Services {
			if sv.Route != nil {
				if err := send(0, view.KindRouting, sv.Route); err != nil {
					return
				}
			}
		}
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
				return
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case ev, ok := <-sub:
			if !ok {
				return
			}
			if !want(ev.Kind) {
				continue
			}
			var data any = ev
			if ev.Kind == view.KindRouting && !ev.Deleted && len(ev.Data) > 0 {
				data = ev.Data // the route itself, for load balancers
			}
			if err := send(ev.Revision, ev.Kind, data); err != nil {
				return
			}
		}
	}
}
