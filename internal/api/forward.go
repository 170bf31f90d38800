package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/firebreak/firebreak/internal/auth"
)

func readAll(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

// forward sends a mutating call to the leader when this node is not the
// leader and the leader's API address is known. It reports whether it
// answered the call (successfully or with an error).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) bool {
	snap, err := s.state.Snapshot(r.Context())
	if err != nil || snap.Leader == "" || snap.Leader == s.cfg.Node {
		return false
	}
	if snap.Stale {
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("node %s has no store quorum since %s: changes are refused here; use a node in the majority", s.cfg.Node, snap.StaleSince.Format("15:04:05")))
		return true
	}
	addr := ""
	for _, n := range snap.Nodes {
		if n.Name == snap.Leader {
			addr = n.API
		}
	}
	if addr == "" {
		return false // leader has no API address: apply here (the store is shared)
	}
	u := url.URL{Scheme: s.cfg.LeaderScheme, Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return true
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(ForwardedHeader, s.cfg.Node)
	req.Header.Set("X-Forwarded-For", r.RemoteAddr)
	if h := r.Header.Get("Authorization"); h != "" {
		req.Header.Set("Authorization", h)
	} else if c, err := r.Cookie(auth.CookieName); err == nil {
		req.Header.Set("Authorization", "Bearer "+c.Value)
	}
	s.m.forwarded.Inc()
	resp, err := s.fwd.Do(req)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("forward to leader %s at %s: %w (a new leader is elected within the lease TTL; retry)", snap.Leader, addr, err))
		return true
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", ServedByHeader, "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(ForwardedHeader, s.cfg.Node)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, io.LimitReader(resp.Body, 4<<20)); err != nil {
		s.log.Debug("copy forwarded response", "err", err)
	}
	return true
}
