// Package sitesim runs a whole firebreak watch-and-decide loop in one
// process for tests and benchmarks: an embedded etcd, one HTTP endpoint per
// "site" on its own loopback address, one prober per site's node (each with
// a switch that cuts its checks off, as a partition of that observer would),
// node liveness keys under leases, and the decider.
package sitesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// Config describes the simulated sites.
type Config struct {
	// IPs is one loopback address per datacenter site (sites are named
	// s0, s1, ...; nodes n-s0, ...). At least 3.
	IPs []string
	// Interval, Timeout, Rise, Fall of the http check (defaults 1s, 500ms, 2, 2).
	Interval, Timeout time.Duration
	Rise, Fall        int
	// HoldDown for the decider (default 10s).
	HoldDown time.Duration
	// Dir is the etcd data directory (required).
	Dir string
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Service is the name of the simulated service.
const Service = "web"

// Sim is a running simulation. Close stops it.
type Sim struct {
	Topology *topology.Topology
	Client   *clientv3.Client
	Decider  *decide.Decider
	// ClientURL is the embedded etcd's client URL (http://127.0.0.1:port).
	ClientURL string

	etcd    *store.Member
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	cut     map[string]*atomic.Bool
	leases  map[string]clientv3.LeaseID
	stops   map[string]context.CancelFunc // per node: stops its prober and keep-alive
	mu      sync.Mutex
	servers map[string]*http.Server // by site
	addrs   map[string]string       // site -> host:port
	errs    chan error
	once    sync.Once
}

// Site returns the name of site i.
func Site(i int) string { return "s" + strconv.Itoa(i) }

// Node returns the name of site i's node.
func Node(i int) string { return "n-" + Site(i) }

// Start brings everything up and returns once the first routing of the
// service lists every site.
func Start(ctx context.Context, cfg Config) (s *Sim, err error) {
	if len(cfg.IPs) < 3 {
		return nil, errors.New("sitesim: need at least 3 site addresses")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Rise <= 0 {
		cfg.Rise = 2
	}
	if cfg.Fall <= 0 {
		cfg.Fall = 2
	}
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s = &Sim{cut: map[string]*atomic.Bool{}, leases: map[string]clientv3.LeaseID{}, stops: map[string]context.CancelFunc{},
		servers: map[string]*http.Server{}, addrs: map[string]string{}, errs: make(chan error, 16)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startEtcd(cfg.Dir); err != nil {
		return nil, err
	}

	// Endpoints first: the topology needs their ports.
	topo := &topology.Topology{Decide: topology.Decide{MaxAutoEvacuatedSites: 1, HoldDown: cfg.HoldDown}}
	svc := &topology.Service{Name: Service, Policy: topology.PolicyActiveActive,
		Check: topology.Check{Type: topology.CheckHTTP, Path: "/healthz", Status: 200,
			Interval: cfg.Interval, Timeout: cfg.Timeout, Rise: cfg.Rise, Fall: cfg.Fall}}
	for i, ip := range cfg.IPs {
		site := Site(i)
		if err := s.serve(site, net.JoinHostPort(ip, "0")); err != nil {
			return nil, err
		}
		host, port, _ := net.SplitHostPort(s.addrs[site])
		p, _ := strconv.Atoi(port)
		topo.Sites = append(topo.Sites, &topology.Site{Name: site, Role: topology.RoleDatacenter})
		topo.Nodes = append(topo.Nodes, &topology.Node{Name: Node(i), Site: site})
		svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: Service, Site: site, Address: host, Port: p, Weight: 1, Capacity: 1})
	}
	topo.Services = []*topology.Service{svc}
	topo.Index()
	s.Topology = topo

	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for i := range cfg.IPs {
		node := Node(i)
		lease, err := s.Client.Grant(ctx, 3)
		if err != nil {
			return nil, fmt.Errorf("sitesim: grant lease: %w", err)
		}
		nctx, stop := context.WithCancel(rctx)
		s.stops[node] = stop
		ka, err := s.Client.KeepAlive(nctx, lease.ID)
		if err != nil {
			return nil, fmt.Errorf("sitesim: keepalive: %w", err)
		}
		s.go_(func() {
			for range ka {
			}
		})
		if _, err := s.Client.Put(ctx, store.NodesPrefix+node, `{"site":"`+Site(i)+`"}`, clientv3.WithLease(lease.ID)); err != nil {
			return nil, fmt.Errorf("sitesim: register node: %w", err)
		}
		s.leases[node] = lease.ID
		cut := new(atomic.Bool)
		s.cut[node] = cut
		dialer := &net.Dialer{}
		p, err := probe.NewProber(probe.Config{Node: node, Topology: topo, Client: s.Client, Lease: lease.ID, Logger: cfg.Logger,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if cut.Load() {
					return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("observer cut off (simulated partition)")}
				}
				return dialer.DialContext(ctx, network, addr)
			}})
		if err != nil {
			return nil, err
		}
		s.go_(func() { s.report(p.Run(nctx)) })
	}
	s.Decider, err = decide.NewDecider(decide.DeciderConfig{Client: s.Client, Engine: decide.NewEngine(topo, 0), Logger: cfg.Logger, Tick: 100 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	s.go_(func() { s.report(s.Decider.Run(rctx)) })
	if _, err := s.WaitRoute(ctx, func(r *routing.Route) bool { return len(r.Targets) == len(cfg.IPs) && !r.FailOpen }); err != nil {
		return nil, fmt.Errorf("sitesim: first routing: %w", err)
	}
	return s, nil
}

func (s *Sim) go_(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

func (s *Sim) report(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		select {
		case s.errs <- err:
		default:
		}
	}
}

// Err returns the first error a background part stopped with, if any.
func (s *Sim) Err() error {
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}

func (s *Sim) startEtcd(dir string) error {
	e, cli, u, err := StartEtcd(dir)
	if err != nil {
		return err
	}
	s.etcd, s.Client, s.ClientURL = e, cli, u
	return nil
}

// StartEtcd starts a single-member store (store.StartLoopback) in dir on
// free loopback ports and returns it with a client and its client URL.
// Close the client, then the member.
func StartEtcd(dir string) (*store.Member, *clientv3.Client, string, error) {
	m, err := store.StartLoopback(context.Background(), store.MemberConfig{Name: "sitesim", Dir: dir, TickMs: 50, ElectionMs: 500}, "127.0.0.1")
	if err != nil {
		return nil, nil, "", fmt.Errorf("sitesim: start etcd: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		m.Close()
		return nil, nil, "", fmt.Errorf("sitesim: etcd client: %w", err)
	}
	return m, cli, m.ClientURL(), nil
}

func (s *Sim) serve(site, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sitesim: listen for site %s: %w", site, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok "+site)
	}), ReadHeaderTimeout: time.Second}
	s.mu.Lock()
	s.servers[site] = srv
	s.addrs[site] = l.Addr().String()
	s.mu.Unlock()
	go srv.Serve(l) //nolint:errcheck // Serve returns on Close
	return nil
}

// KillSite closes the site's endpoint (connections are then refused).
func (s *Sim) KillSite(site string) error {
	s.mu.Lock()
	srv := s.servers[site]
	delete(s.servers, site)
	s.mu.Unlock()
	if srv == nil {
		return fmt.Errorf("sitesim: site %s is not running", site)
	}
	return srv.Close()
}

// RestoreSite starts the site's endpoint again on the same address.
func (s *Sim) RestoreSite(site string) error {
	s.mu.Lock()
	addr := s.addrs[site]
	s.mu.Unlock()
	return s.serve(site, addr)
}

// Isolate cuts (or restores) every check made by node, as if its network
// were partitioned away from the endpoints while it still reaches the store.
func (s *Sim) Isolate(node string, cut bool) { s.cut[node].Store(cut) }

// KillNode stops node's prober and revokes its lease, as when the node dies
// with its site: its liveness key and observations vanish.
func (s *Sim) KillNode(ctx context.Context, node string) error {
	s.stops[node]()
	if _, err := s.Client.Revoke(ctx, s.leases[node]); err != nil {
		return fmt.Errorf("sitesim: revoke %s: %w", node, err)
	}
	return nil
}

// Route reads the service's routing and its store revision.
func (s *Sim) Route(ctx context.Context) (*routing.Route, int64, error) {
	resp, err := s.Client.Get(ctx, store.RoutingPrefix+Service)
	if err != nil || len(resp.Kvs) == 0 {
		return nil, 0, err
	}
	var r routing.Route
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return nil, 0, err
	}
	return &r, resp.Kvs[0].ModRevision, nil
}

// WaitRoute polls the routing until ok holds or ctx ends.
func (s *Sim) WaitRoute(ctx context.Context, ok func(*routing.Route) bool) (*routing.Route, error) {
	for {
		r, _, err := s.Route(ctx)
		if err == nil && r != nil && ok(r) {
			return r, nil
		}
		if err := s.Err(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for routing (last %v): %w", r, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Observations returns node's current opinions (endpoint ID -> up).
func (s *Sim) Observations(ctx context.Context, node string) (map[string]bool, error) {
	resp, err := s.Client.Get(ctx, store.ObservationsPrefix+node+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, kv := range resp.Kvs {
		var o probe.Observation
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return nil, err
		}
		out[o.Endpoint] = o.Up
	}
	return out, nil
}

// HasSite reports whether r routes to site.
func HasSite(r *routing.Route, site string) bool {
	for _, t := range r.Targets {
		if t.Site == site {
			return true
		}
	}
	return false
}

// Close stops everything; it is safe to call more than once.
func (s *Sim) Close() error {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		s.mu.Lock()
		for _, srv := range s.servers {
			srv.Close()
		}
		s.mu.Unlock()
		if s.Client != nil {
			s.Client.Close()
		}
		if s.etcd != nil {
			s.etcd.Close()
		}
	})
	return nil
}
