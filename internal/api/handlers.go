package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{Timeout: 10 * time.Second}))

	read := func(pattern string, h func(http.ResponseWriter, *http.Request, *view.Snapshot)) {
		m.Handle(pattern, s.require(auth.Viewer, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
			snap, err := s.state.Snapshot(r.Context())
			if err != nil {
				s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("no state yet: %w", err))
				return
			}
			staleHeaders(w, snap)
			h(w, r, snap)
		}))
	}
	read("GET /api/v1/snapshot", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) { s.json(w, http.StatusOK, snap) })
	read("GET /api/v1/topology", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.reply(w, snap, "topology", snap.Topology)
	})
	read("GET /api/v1/sites", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.reply(w, snap, "sites", snap.Sites)
	})
	read("GET /api/v1/sites/{name}", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		if st := snap.FindSite(r.PathValue("name")); st != nil {
			s.reply(w, snap, "site", st)
			return
		}
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("site %q: %w", r.PathValue("name"), view.ErrNotFound))
	})
	read("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.reply(w, snap, "services", snap.Services)
	})
	read("GET /api/v1/services/{name}", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		if sv := snap.Find(r.PathValue("name")); sv != nil {
			s.reply(w, snap, "service", sv)
			return
		}
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("service %q: %w", r.PathValue("name"), view.ErrNotFound))
	})
	read("GET /api/v1/endpoints", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		type ep struct {
			Service string `json:"service"`
			view.Endpoint
		}
		out := []ep{}
		for _, sv := range snap.Services {
			for _, e := range sv.Endpoints {
				out = append(out, ep{Service: sv.Name, Endpoint: e})
			}
		}
		s.replyMore(w, snap, map[string]any{"endpoints": out, "observers": snap.Observers})
	})
	read("GET /api/v1/verdicts", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		eps := map[string]*decide.EndpointVerdict{}
		for _, sv := range snap.Services {
			for _, e := range sv.Endpoints {
				if e.Verdict != nil {
					eps[e.ID] = e.Verdict
				}
			}
		}
		sites := map[string]view.Site{}
		for _, st := range snap.Sites {
			sites[st.Name] = st
		}
		s.replyMore(w, snap, map[string]any{"endpoints": eps, "sites": sites, "alarms": snap.Alarms})
	})
	read("GET /api/v1/routing", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.json(w, http.StatusOK, routingTable(snap))
	})
	read("GET /api/v1/routing/{service}", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		sv := snap.Find(r.PathValue("service"))
		if sv == nil || sv.Route == nil {
			s.fail(w, r, http.StatusNotFound, fmt.Errorf("routing of %q: %w", r.PathValue("service"), view.ErrNotFound))
			return
		}
		s.reply(w, snap, "route", sv.Route)
	})
	read("GET /api/v1/overrides", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		out := []view.Override{}
		all := r.URL.Query().Get("all") == "true"
		for _, o := range snap.Overrides {
			if all || o.Active {
				out = append(out, o)
			}
		}
		s.reply(w, snap, "overrides", out)
	})
	read("GET /api/v1/nodes", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.replyMore(w, snap, map[string]any{"nodes": snap.Nodes, "leader": snap.Leader, "store": snap.Store})
	})
	read("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		s.replyMore(w, snap, map[string]any{"leader": snap.Leader, "store": snap.Store, "alarms": snap.Alarms})
	})
	read("GET /api/v1/datastores", func(w http.ResponseWriter, r *http.Request, snap *view.Snapshot) {
		out := []view.DatastoreReadiness{}
		if s.cfg.Readiness != nil {
			if rs := s.cfg.Readiness(); rs != nil {
				out = rs
			}
		}
		s.reply(w, snap, "datastores", out)
	})
	m.Handle("GET /api/v1/history", s.require(auth.Viewer, s.history))
	m.Handle("GET /api/v1/events", s.require(auth.Viewer, s.events))
	m.Handle("GET /api/v1/whoami", s.require(auth.None, func(w http.ResponseWriter, r *http.Request, id auth.Identity) {
		s.json(w, http.StatusOK, map[string]any{"name": id.Name, "role": id.Role.String(), "node": s.cfg.Node})
	}))
	m.Handle("GET /api/v1/audit", s.require(auth.Admin, s.audit))

	s.runRoutes(m)

	m.Handle("POST /api/v1/sites/{name}/drain", s.mutate("drain", s.drain))
	m.Handle("POST /api/v1/sites/{name}/undrain", s.mutate("undrain", s.undrain))
	m.Handle("POST /api/v1/overrides", s.mutate("override.create", s.createOverride))
	m.Handle("DELETE /api/v1/overrides/{id}", s.mutate("override.expire", s.expireOverride))
	m.Handle("POST /api/v1/overrides/{id}/expire", s.mutate("override.expire", s.expireOverride))

	if s.cfg.UI != nil {
		m.Handle("/", s.cfg.UI)
	} else {
		m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			s.json(w, http.StatusOK, map[string]string{"node": s.cfg.Node, "api": "/api/v1/", "docs": "docs/api.md"})
		})
	}
}

func staleHeaders(w http.ResponseWriter, snap *view.Snapshot) {
	w.Header().Set("X-Firebreak-Node", snap.Node)
	w.Header().Set("X-Firebreak-Revision", strconv.FormatInt(snap.Revision, 10))
	if snap.Stale {
		w.Header().Set("X-Firebreak-Stale", "true")
		if !snap.StaleSince.IsZero() {
			w.Header().Set("X-Firebreak-Stale-Since", snap.StaleSince.UTC().Format(time.RFC3339Nano))
		}
	}
}

func routingTable(snap *view.Snapshot) *routing.Table {
	t := &routing.Table{Routes: map[string]*routing.Route{}, Stale: snap.Stale, StaleSince: snap.StaleSince}
	for _, sv := range snap.Services {
		if sv.Route != nil {
			t.Routes[sv.Name] = sv.Route
			t.Revision = max(t.Revision, sv.Route.Revision)
		}
	}
	return t
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	snap, err := s.state.Snapshot(r.Context())
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	code := http.StatusOK
	if snap.Stale {
		code = http.StatusServiceUnavailable
	}
	s.json(w, code, map[string]any{"node": snap.Node, "quorum": snap.Store.Quorum, "stale": snap.Stale,
		"staleSince": snap.StaleSince, "leader": snap.Leader})
}

// reply writes {"node","revision","stale","staleSince",key: v}.
func (s *Server) reply(w http.ResponseWriter, snap *view.Snapshot, key string, v any) {
	s.replyMore(w, snap, map[string]any{key: v})
}

func (s *Server) replyMore(w http.ResponseWriter, snap *view.Snapshot, m map[string]any) {
	m["node"] = snap.Node
	m["revision"] = snap.Revision
	m["stale"] = snap.Stale
	if snap.Stale {
		m["staleSince"] = snap.StaleSince
	}
	s.json(w, http.StatusOK, m)
}

func (s *Server) json(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

// apiError is the body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		s.log.Warn("api error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	s.json(w, code, apiError{Error: err.Error(), Status: code})
}

type identified func(http.ResponseWriter, *http.Request, auth.Identity)

// require runs h when the caller has at least role.
func (s *Server) require(role auth.Role, h identified) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.cfg.Auth.Identify(r)
		if err != nil {
			s.m.authFailures.WithLabelValues("bad-token").Inc()
			s.log.Info("refused token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="firebreak"`)
			s.fail(w, r, http.StatusUnauthorized, err)
			return
		}
		if id.Role < role {
			code := http.StatusForbidden
			reason := "forbidden"
			if id.Role == auth.None {
				code, reason = http.StatusUnauthorized, "no-token"
				w.Header().Set("WWW-Authenticate", `Bearer realm="firebreak"`)
			}
			s.m.authFailures.WithLabelValues(reason).Inc()
			if r.Method != http.MethodGet {
				s.log.Info("refused change", "method", r.Method, "path", r.URL.Path, "who", id.Name, "role", id.Role.String(), "remote", r.RemoteAddr)
			}
			s.fail(w, r, code, fmt.Errorf("%s needs role %s; caller %s has role %s", r.URL.Path, role, id.Name, id.Role))
			return
		}
		h(w, r, id)
	})
}

// mutation is a mutating handler after auth, CSRF and forwarding.
type mutation func(w http.ResponseWriter, r *http.Request, c view.Change, body []byte)

// ForwardedHeader marks a call forwarded by a follower; its value is the
// follower's node name. A call carrying it is never forwarded again.
const ForwardedHeader = "X-Firebreak-Forwarded-By"

// ServedByHeader names the node that applied a mutating call.
const ServedByHeader = "X-Firebreak-Served-By"

func (s *Server) mutate(action string, h mutation) http.Handler {
	return s.require(auth.Operator, func(w http.ResponseWriter, r *http.Request, id auth.Identity) {
		if id.Cookie && r.Header.Get(auth.CSRFHeader) == "" {
			s.fail(w, r, http.StatusForbidden, fmt.Errorf("a browser call authenticated by cookie must carry the %s header", auth.CSRFHeader))
			return
		}
		if s.actions == nil {
			s.fail(w, r, http.StatusNotImplemented, errors.New("this node's API is read-only"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		body, err := readAll(r)
		if err != nil {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %w", err))
			return
		}
		via := r.Header.Get(ForwardedHeader)
		if via == "" && !s.cfg.NoForward {
			if done := s.forward(w, r, body); done {
				return
			}
		}
		if via == "" {
			via = s.cfg.Node
		} else {
			via = via + "->" + s.cfg.Node
		}
		c := view.Change{Who: id.Name, Role: id.Role.String(), Via: via, Remote: remote(r)}
		w.Header().Set(ServedByHeader, s.cfg.Node)
		s.m.mutations.WithLabelValues(action).Inc()
		h(w, r, c, body)
	})
}

func remote(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" && r.Header.Get(ForwardedHeader) != "" {
		return f
	}
	return r.RemoteAddr
}

// drainRequest is the body of drain and undrain.
type drainRequest struct {
	// Reason is required: why the site is drained.
	Reason string `json:"reason"`
	// TTL is how long the drain lasts (Go duration, default Config.DefaultTTL).
	TTL string `json:"ttl,omitempty"`
}

func decodeBody(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return fmt.Errorf("%w: empty body: expected a JSON object", view.ErrInvalid)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", view.ErrInvalid, err)
	}
	return nil
}

// requireReason returns a view.ErrInvalid error when reason is blank, so
// every change says why it was made; hint, when not empty, is added to the
// message to say what the reason should explain.
func requireReason(reason, hint string) error {
	if strings.TrimSpace(reason) != "" {
		return nil
	}
	if hint == "" {
		return fmt.Errorf("%w: reason is required", view.ErrInvalid)
	}
	return fmt.Errorf("%w: reason is required: %s", view.ErrInvalid, hint)
}

func (s *Server) ttl(v string) (time.Duration, error) {
	if v == "" {
		return s.cfg.DefaultTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: ttl %q: expected a positive Go duration such as 30m or 4h", view.ErrInvalid, v)
	}
	if d > s.cfg.MaxTTL {
		return 0, fmt.Errorf("%w: ttl %s is above the maximum %s", view.ErrInvalid, d, s.cfg.MaxTTL)
	}
	return d, nil
}

func (s *Server) actionError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, view.ErrInvalid), errors.Is(err, decide.ErrBadOverride):
		s.fail(w, r, http.StatusBadRequest, err)
	case errors.Is(err, view.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, err)
	case errors.Is(err, view.ErrUnavailable):
		s.fail(w, r, http.StatusServiceUnavailable, err)
	default:
		s.fail(w, r, http.StatusInternalServerError, err)
	}
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request, c view.Change, body []byte) {
	var req drainRequest
	if err := decodeBody(body, &req); err != nil {
		s.actionError(w, r, err)
		return
	}
	if err := requireReason(req.Reason, "say why the site is drained"); err != nil {
		s.actionError(w, r, err)
		return
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	c.Why = req.Reason
	o, err := s.actions.Drain(r.Context(), c, r.PathValue("name"), ttl)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	s.json(w, http.StatusCreated, map[string]any{"override": o})
}

func (s *Server) undrain(w http.ResponseWriter, r *http.Request, c view.Change, body []byte) {
	var req drainRequest
	if err := decodeBody(body, &req); err != nil {
		s.actionError(w, r, err)
		return
	}
	if err := requireReason(req.Reason, "say why the site is back"); err != nil {
		s.actionError(w, r, err)
		return
	}
	c.Why = req.Reason
	os, err := s.actions.Undrain(r.Context(), c, r.PathValue("name"))
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	if os == nil {
		os = []view.Override{}
	}
	s.json(w, http.StatusOK, map[string]any{"expired": os})
}

// overrideRequest is the body of POST /api/v1/overrides.
type overrideRequest struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Reason string `json:"reason"`
	TTL    string `json:"ttl,omitempty"`
}

func (s *Server) createOverride(w http.ResponseWriter, r *http.Request, c view.Change, body []byte) {
	var req overrideRequest
	if err := decodeBody(body, &req); err != nil {
		s.actionError(w, r, err)
		return
	}
	if err := requireReason(req.Reason, ""); err != nil {
		s.actionError(w, r, err)
		return
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	c.Why = req.Reason
	now := time.Now().UTC()
	o, err := s.actions.SetOverride(r.Context(), c, decide.Override{Kind: req.Kind, Target: req.Target, Created: now, Expires: now.Add(ttl)})
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	s.json(w, http.StatusCreated, map[string]any{"override": o})
}

func (s *Server) expireOverride(w http.ResponseWriter, r *http.Request, c view.Change, body []byte) {
	var req struct {
		Reason string `json:"reason"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeBody(body, &req); err != nil {
			s.actionError(w, r, err)
			return
		}
	}
	if req.Reason == "" {
		req.Reason = r.URL.Query().Get("reason")
	}
	if err := requireReason(req.Reason, ""); err != nil {
		s.actionError(w, r, err)
		return
	}
	c.Why = req.Reason
	o, err := s.actions.ExpireOverride(r.Context(), c, r.PathValue("id"))
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"override": o})
}

func parseSince(q string, def time.Time) (time.Time, error) {
	if q == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(q); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, q)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: since %q: expected RFC 3339 time or a duration such as 24h", view.ErrInvalid, q)
	}
	return t, nil
}

func parseLimit(q string, def int) (int, error) {
	if q == "" {
		return def, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: limit %q: expected a non-negative integer", view.ErrInvalid, q)
	}
	return n, nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	since, err := parseSince(r.URL.Query().Get("since"), time.Now().Add(-24*time.Hour))
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	limit, err := parseLimit(r.URL.Query().Get("limit"), 1000)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	evs, err := s.state.History(r.Context(), since)
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if kind := r.URL.Query().Get("kind"); kind != "" {
		out := evs[:0:0]
		for _, e := range evs {
			if e.Kind == kind {
				out = append(out, e)
			}
		}
		evs = out
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.After(evs[j].Time) })
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	if evs == nil {
		evs = []decide.Event{}
	}
	s.json(w, http.StatusOK, map[string]any{"node": s.cfg.Node, "since": since, "history": evs})
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if s.actions == nil {
		s.fail(w, r, http.StatusNotImplemented, errors.New("no audit log on a read-only API"))
		return
	}
	since, err := parseSince(r.URL.Query().Get("since"), time.Now().Add(-30*24*time.Hour))
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	limit, err := parseLimit(r.URL.Query().Get("limit"), 1000)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	recs, err := s.actions.Audit(r.Context(), since, limit)
	if err != nil {
		s.actionError(w, r, err)
		return
	}
	if recs == nil {
		recs = []view.AuditRecord{}
	}
	s.json(w, http.StatusOK, map[string]any{"node": s.cfg.Node, "audit": recs})
}
