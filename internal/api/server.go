// Package api is firebreak's HTTP JSON API, served by every node: topology,
// sites, services, endpoints with every observer's opinion, verdicts,
// routing with revisions, overrides, history, nodes, leader and store
// health; a server-sent events stream of changes; Prometheus metrics; and
// the mutating calls (drain, undrain, overrides) behind bearer-token roles,
// each recorded in the audit log.
//
// Any node answers reads, from the last state it has (flagged stale when
// the node has lost its store quorum). A mutating call that reaches a
// follower is forwarded to the leader. The read model and the actions are
// interfaces (view.State, view.Actions); NewEtcd implements both over
// etcd. See docs/api.md for every route.
//
//	st := api.NewEtcd(cli, api.EtcdConfig{Node: "fb-pangyo"}, logger)
//	go st.Run(ctx)
//	srv, _ := api.New(api.Config{Node: "fb-pangyo", Auth: authn, UI: ui.New(...)}, st, st, logger)
//	err := srv.Serve(ctx, "10.0.1.5:7480")
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Node is this node's name (required): it is reported in every answer
	// and compared with the leader to decide whether to forward.
	Node string
	// Auth identifies callers. Nil: every read is refused except the
	// public ones (health, metrics, UI's public pages) and every write.
	Auth *auth.Authenticator
	// UI, when set, is mounted at "/" (the dashboard and status page).
	UI http.Handler
	// Registry is where /metrics gathers from; other components (prober,
	// DNS server) register their collectors in it. Default: a new registry
	// with the Go and process collectors.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// ReadHeaderTimeout (default 5s), ReadTimeout (default 30s),
	// WriteTimeout (default 30s; streams extend it per event) and
	// IdleTimeout (default 120s) bound every connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// DefaultTTL is an override's lifetime when the caller gives none
	// (default 4h); MaxTTL is the longest allowed (default 7 days).
	DefaultTTL, MaxTTL time.Duration
	// NoForward turns off forwarding of mutating calls to the leader; they
	// are then applied by this node (the store is shared, so the effect is
	// the same, but the leader is the one place that serialises them).
	NoForward bool
	// LeaderScheme is the scheme used to reach the leader's API (default
	// "http").
	LeaderScheme string
	// ForwardTimeout bounds a forwarded call (default 10s).
	ForwardTimeout time.Duration
	// Heartbeat is the interval of keep-alive comments on event streams
	// (default 15s).
	Heartbeat time.Duration
	// MaxStreams bounds concurrent event streams (default 512).
	MaxStreams int
	// Readiness, when set, returns this node's view of every datastore's
	// failover readiness (GET /api/v1/datastores); nil answers an empty
	// list.
	Readiness func() []view.DatastoreReadiness
	// Runs, when set, serves runbook runs under RunsPrefix (built with
	// runbook.Handler(journal, runner, RunsPrefix)): reads need a viewer,
	// pause/resume/abort an operator and are audited. Nil: 404.
	Runs http.Handler
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = 4 * time.Hour
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = 7 * 24 * time.Hour
	}
	if c.LeaderScheme == "" {
		c.LeaderScheme = "http"
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 512
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
}

// Server serves the API. Create it with New.
type Server struct {
	cfg     Config
	state   view.State
	actions view.Actions
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	m       *metrics
	fwd     *http.Client
	streams chan struct{}
}

// New returns a server over state and actions. actions may be nil (a
// read-only API: every mutating call answers 501).
func New(cfg Config, state view.State, actions view.Actions, logger *slog.Logger) (*Server, error) {
	if cfg.Node == "" {
		return nil, errors.New("api: config: node name is empty")
	}
	if state == nil {
		return nil, errors.New("api: state is nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	s := &Server{cfg: cfg, state: state, actions: actions, log: logger.With("component", "api"),
		mux: http.NewServeMux(), fwd: &http.Client{Timeout: cfg.ForwardTimeout},
		streams: make(chan struct{}, cfg.MaxStreams)}
	m, err := newMetrics(cfg.Registry, cfg.Node, state)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.routes()
	s.handler = s.instrument(s.mux)
	return s, nil
}

// Handler returns the HTTP handler (API, metrics, and the UI when set).
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns the metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// HTTPServer returns an http.Server for the handler with every timeout and
// size limit of the config set.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve listens on addr and serves until ctx ends, then shuts down
// gracefully (bounded by 5s, then closes every connection).
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener (closed on return).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	hs.BaseContext = func(net.Listener) context.Context { return ctx }
	s.log.Info("api serving", "addr", ln.Addr().String())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.m.countEvents(ctx, s.state)
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		wg.Wait()
		return fmt.Errorf("api serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close()
	}
	<-errc
	wg.Wait()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("api shutdown: %w", err)
	}
	return nil
}
