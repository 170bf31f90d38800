package demo

import (
	"context"
	"crypto/rand"
	_ "embed" // the demo topology
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/server"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// Topology is the demo topology (topology.yaml): two companies on three
// loopback sites, old-* laid out like 2022 and new-* made N+1.
//
//go:embed topology.yaml
var Topology []byte

// Relocate rewrites the loopback address blocks of a topology's source, for
// example {"127.0.1.": "127.0.71."}, so that a test can run the demo on
// addresses of its own.
func Relocate(src []byte, blocks map[string]string) []byte {
	s := string(src)
	pairs := make([]string, 0, 2*len(blocks))
	for from, to := range blocks {
		pairs = append(pairs, from, to)
	}
	return []byte(strings.NewReplacer(pairs...).Replace(s))
}

// Config configures a demo. Zero values take the documented defaults.
type Config struct {
	// Topology is the topology's YAML (default Topology). Every node must
	// declare api, dns, peer and client URLs on loopback.
	Topology []byte
	// DataDir holds the nodes' etcd data (default: a temporary directory,
	// removed by Close; a given directory is kept).
	DataDir string
	// LeaseTTL is the nodes' liveness and election lease (default 3s).
	LeaseTTL time.Duration
	// StartTimeout bounds Start (default 60s).
	StartTimeout time.Duration
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
}

// Demo is a running demo. Its methods are safe for concurrent use.
type Demo struct {
	cfg      Config
	top      *topology.Topology
	src      []byte
	dir      string
	tempDir  bool
	backends *Backends
	log      *slog.Logger
	// Token is a generated operator API token (drain buttons, API calls).
	Token string

	mu     sync.Mutex
	nodes  map[string]*node.Node // by site; nil once burnt
	closed bool
}

// Start brings up the backends and one node per site, and returns once
// every node sees the store, a leader is elected and every service has a
// route.
func Start(ctx context.Context, cfg Config) (_ *Demo, err error) {
	if cfg.Topology == nil {
		cfg.Topology = Topology
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = node.DefaultLeaseTTL
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	top, err := topology.Parse("demo topology", cfg.Topology)
	if err != nil {
		return nil, fmt.Errorf("demo topology: %w", err)
	}
	d := &Demo{cfg: cfg, top: top, src: cfg.Topology, log: cfg.Logger, nodes: map[string]*node.Node{}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.dir = cfg.DataDir
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "firebreak-demo-"); err != nil {
			return nil, fmt.Errorf("demo data dir: %w", err)
		}
		d.tempDir = true
	}
	if d.backends, err = StartBackends(top, cfg.Logger); err != nil {
		return nil, err
	}
	for _, tn := range top.Nodes {
		if err := d.startNode(ctx, tn); err != nil {
			return nil, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := d.waitReady(sctx); err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	d.Token = "demo-" + hex.EncodeToString(secret)
	cli := d.client()
	if cli == nil {
		return nil, errors.New("demo: no node running")
	}
	if err := api.PutToken(sctx, cli, "demo-operator", auth.Operator, d.Token); err != nil {
		return nil, fmt.Errorf("demo: store the operator token: %w", err)
	}
	return d, nil
}

func (d *Demo) startNode(ctx context.Context, tn *topology.Node) error {
	dir := filepath.Join(d.dir, tn.Name)
	member, ext, err := node.StoreFor(d.top, tn, tn.Name, node.StoreOptions{DataDir: dir, Token: "firebreak-demo"})
	if err != nil {
		return fmt.Errorf("demo node %s: %w", tn.Name, err)
	}
	log := d.log.With("node", tn.Name)
	comps, err := server.Components(d.top, tn, server.Options{Anonymous: auth.Viewer, DNSWorkers: 1,
		DNSSocketBuffer: -1, DNSProbe: time.Second, UITitle: "firebreak demo", Logger: log})
	if err != nil {
		return fmt.Errorf("demo node %s: %w", tn.Name, err)
	}
	n, err := node.Start(ctx, node.Config{Name: tn.Name, Topology: d.top, TopologySource: d.src, Member: member,
		External: ext, LeaseTTL: d.cfg.LeaseTTL, Version: "demo", Logger: log, Components: comps})
	if err != nil {
		return fmt.Errorf("demo node %s: %w", tn.Name, err)
	}
	d.mu.Lock()
	d.nodes[tn.Site] = n
	d.mu.Unlock()
	return nil
}

// client returns a running node's store client (nil when none runs).
func (d *Demo) client() *clientv3.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.siteNames() {
		if n := d.nodes[s]; n != nil {
			return n.Client()
		}
	}
	return nil
}

func (d *Demo) siteNames() []string {
	var out []string
	for _, s := range d.top.Sites {
		out = append(out, s.Name)
	}
	return out
}

// Topology returns the demo's topology.
func (d *Demo) Topology() *topology.Topology { return d.top }

// Sites lists the sites and whether each is running.
func (d *Demo) Sites() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]bool{}
	for _, s := range d.siteNames() {
		out[s] = d.nodes[s] != nil
	}
	return out
}

// Leader is the leader as seen by a running node ("" if none).
func (d *Demo) Leader() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.siteNames() {
		if n := d.nodes[s]; n != nil {
			if l := n.Leader(); l != "" {
				return l
			}
		}
	}
	return ""
}

func (d *Demo) waitReady(ctx context.Context) error {
	for {
		ready, why := d.ready(ctx)
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo did not become ready (%s): %w", why, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Demo) ready(ctx context.Context) (bool, string) {
	d.mu.Lock()
	nodes := make([]*node.Node, 0, len(d.nodes))
	for _, n := range d.nodes {
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	d.mu.Unlock()
	for _, n := range nodes {
		if stale, _ := n.Stale(); stale {
			return false, n.Name() + " has no store quorum yet"
		}
	}
	if d.Leader() == "" {
		return false, "no leader yet"
	}
	cli := d.client()
	routes, err := Routes(ctx, cli)
	if err != nil {
		return false, err.Error()
	}
	for _, s := range d.top.Services {
		r := routes[s.Name]
		want := len(s.Endpoints)
		if s.Policy == topology.PolicyFailover {
			want = 1
		}
		if r == nil || r.FailOpen || len(r.Targets) < want {
			return false, "service " + s.Name + " not routed to every endpoint yet"
		}
	}
	return true, ""
}

// Routes reads every service's routing from the store.
func Routes(ctx context.Context, cli *clientv3.Client) (map[string]*routing.Route, error) {
	return readRoutes(ctx, cli)
}

// localRoutes reads routing from the member's own applied state
// (serializable): it does not wait out a raft election after a burn, so the
// measurement loop keeps its pace; a routing change is still only visible
// once committed and applied.
func localRoutes(ctx context.Context, cli *clientv3.Client) (map[string]*routing.Route, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return readRoutes(ctx, cli, clientv3.WithSerializable())
}

func readRoutes(ctx context.Context, cli *clientv3.Client, opts ...clientv3.OpOption) (map[string]*routing.Route, error) {
	resp, err := cli.Get(ctx, store.RoutingPrefix, append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("read routing: %w", err)
	}
	out := map[string]*routing.Route{}
	for _, kv := range resp.Kvs {
		var r routing.Route
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			continue
		}
		r.Revision = kv.ModRevision
		out[r.Service] = &r
	}
	return out, nil
}

// URLs are where a viewer looks.
type URLs struct {
	Dashboard, Status string
	// DNS is a node's DNS address and Dig a command that asks it.
	DNS, Dig string
}

// URLs returns the addresses of a running site's node (preferring site).
func (d *Demo) URLs(prefer string) URLs {
	sites := d.Sites()
	var tn *topology.Node
	for _, n := range d.top.Nodes {
		if sites[n.Site] && (tn == nil || n.Site == prefer) {
			tn = n
		}
	}
	if tn == nil {
		return URLs{}
	}
	host, port, _ := net.SplitHostPort(tn.DNS)
	name := "new-messenger." + strings.TrimSuffix(d.top.DNS.Zone, ".")
	return URLs{
		Dashboard: "http://" + tn.API + "/",
		Status:    "http://" + tn.API + "/status",
		DNS:       tn.DNS,
		Dig:       fmt.Sprintf("dig @%s -p %s +short %s", host, port, name),
	}
}

// Burned is what a burn measured.
type Burned struct {
	Site string
	// LeaderBefore and LeaderAfter are the leader before the burn and once
	// the survivors agree on one; LeaderIn is how long that took (0 when
	// the leader was elsewhere and stayed).
	LeaderBefore, LeaderAfter string
	LeaderIn                  time.Duration
	// DNSServer is the surviving node whose DNS answers were watched.
	DNSServer string
	Services  []ServiceOutcome
	// HoldDownLeft is how much of the decider's hold-down (dampening after
	// a routing change) was still running at the burn for the most
	// recently changed affected route: moves could not happen sooner.
	HoldDownLeft time.Duration
}

// ServiceOutcome is what happened to one service that had targets in the
// burnt site.
type ServiceOutcome struct {
	Service       string
	Before, After []string // routed sites
	// Moved: routed away from the burnt site to healthy targets. Dark: no
	// healthy target was left; the route fails open (keeps the dead
	// targets, alarm raised).
	Moved, Dark bool
	// RoutedIn is the time from the burn to the routing change in the
	// store; DNSIn to the surviving node's DNS answer no longer holding
	// the burnt site's addresses (moved services only). Zero: not seen
	// within the wait.
	RoutedIn, DNSIn time.Duration
	// BlockedBy names a hard dependency (direct or not) that went dark:
	// the service was re-routed but cannot work without it.
	BlockedBy string
	// CapacityLeft is the declared capacity of the routed targets after
	// the burn, and Peak the service's declared peak (0: not declared).
	CapacityLeft, Peak int
}

// Burn kills site at once — its node (no graceful leave: no resignation,
// no lease revocation, its etcd member stopped), and its backends — then
// measures, through a surviving node, how long routing and DNS took to
// move and who leads afterwards. It waits at most wait (default 30s).
// Site "leader" burns the site of the current leader.
func (d *Demo) Burn(ctx context.Context, site string, wait time.Duration) (*Burned, error) {
	if wait <= 0 {
		wait = 30 * time.Second
	}
	if site == "leader" {
		if tn := d.top.Node(d.Leader()); tn != nil {
			site = tn.Site
		}
	}
	d.mu.Lock()
	victim, ok := d.nodes[site]
	if !ok || victim == nil {
		d.mu.Unlock()
		return nil, fmt.Errorf("site %q is not running (sites: %s)", site, strings.Join(d.siteNames(), ", "))
	}
	var survivor *node.Node
	for _, s := range d.siteNames() {
		if n := d.nodes[s]; n != nil && s != site && survivor == nil {
			survivor = n
		}
	}
	d.mu.Unlock()
	if survivor == nil {
		return nil, errors.New("no other site is running: burning the last one would leave nothing to watch")
	}
	cli := survivor.Client()
	before, err := Routes(ctx, cli)
	if err != nil {
		return nil, err
	}
	res := &Burned{Site: site, LeaderBefore: d.Leader()}
	tn := d.top.Node(survivor.Name())
	res.DNSServer = tn.DNS
	var outs []*ServiceOutcome
	for _, s := range d.top.Services {
		r := before[s.Name]
		if r == nil || !hasSite(r, site) {
			continue
		}
		outs = append(outs, &ServiceOutcome{Service: s.Name, Before: routedSites(r)})
		if left := time.Until(r.UpdatedAt.Add(d.top.Decide.HoldDown)); left > res.HoldDownLeft {
			res.HoldDownLeft = left
		}
	}

	// Burn: everything of the site at once.
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); victim.Abort() }()
	go func() { defer wg.Done(); d.backends.KillSite(site) }()
	d.mu.Lock()
	d.nodes[site] = nil
	d.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	zone := d.top.DNS.Zone
	dnsc := &dns.Client{Timeout: 300 * time.Millisecond}
	siteAddrs := map[string]bool{}
	for _, ep := range d.top.Endpoints() {
		if ep.Site == site {
			siteAddrs[ep.Address] = true
		}
	}
	leaderDone := false
	for {
		now := time.Since(start)
		pending := false
		routes, err := localRoutes(wctx, cli)
		if err == nil {
			for _, o := range outs {
				r := routes[o.Service]
				if o.RoutedIn == 0 && r != nil && (r.FailOpen || !hasSite(r, site)) {
					o.RoutedIn = now
					o.After = routedSites(r)
					o.Dark = r.FailOpen || hasSite(r, site)
					o.Moved = !o.Dark
				}
				if o.RoutedIn == 0 {
					pending = true
				}
			}
		} else {
			pending = true
		}
		for _, o := range outs {
			if o.DNSIn != 0 || (o.RoutedIn != 0 && !o.Moved) {
				continue
			}
			svc := d.top.Service(o.Service)
			name := dns.Fqdn(svc.Name + "." + strings.TrimSuffix(zone, "."))
			if svc.DNSName != "" {
				name = dns.Fqdn(svc.DNSName + "." + strings.TrimSuffix(zone, "."))
			}
			if addrs, err := queryA(dnsc, res.DNSServer, name); err == nil && len(addrs) > 0 && !anyIn(addrs, siteAddrs) {
				o.DNSIn = time.Since(start)
			} else {
				pending = true
			}
		}
		if !leaderDone {
			l := survivor.Leader()
			if l != "" && l != victim.Name() {
				res.LeaderAfter = l
				if res.LeaderBefore == victim.Name() {
					res.LeaderIn = time.Since(start)
				}
				leaderDone = true
			} else {
				pending = true
			}
		}
		if !pending {
			break
		}
		select {
		case <-wctx.Done():
			wg.Wait()
			res.Services = d.explain(deref(outs), site)
			return res, nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	wg.Wait()
	res.Services = d.explain(deref(outs), site)
	return res, nil
}

// explain adds what routing alone does not say: hard dependencies that
// went dark, and the capacity left against the declared peak.
func (d *Demo) explain(outs []ServiceOutcome, site string) []ServiceOutcome {
	dark := map[string]bool{}
	for _, o := range outs {
		if o.Dark {
			dark[o.Service] = true
		}
	}
	var blocked func(name string, seen map[string]bool) string
	blocked = func(name string, seen map[string]bool) string {
		svc := d.top.Service(name)
		if svc == nil || seen[name] {
			return ""
		}
		seen[name] = true
		for _, dep := range svc.DependsOn {
			if !dep.Hard {
				continue
			}
			if dark[dep.Target] {
				return dep.Target
			}
			if b := blocked(dep.Target, seen); b != "" {
				return b
			}
		}
		return ""
	}
	for i := range outs {
		o := &outs[i]
		svc := d.top.Service(o.Service)
		if svc == nil {
			continue
		}
		if o.Moved {
			o.BlockedBy = blocked(o.Service, map[string]bool{})
		}
		o.Peak = svc.Peak
		for _, ep := range svc.Endpoints {
			if ep.Site != site && slices.Contains(o.After, ep.Site) {
				o.CapacityLeft += ep.Capacity
			}
		}
	}
	return outs
}

func deref(in []*ServiceOutcome) []ServiceOutcome {
	out := make([]ServiceOutcome, len(in))
	for i, o := range in {
		out[i] = *o
	}
	return out
}

func queryA(c *dns.Client, server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out, nil
}

func anyIn(addrs []string, set map[string]bool) bool {
	for _, a := range addrs {
		if set[a] {
			return true
		}
	}
	return false
}

func hasSite(r *routing.Route, site string) bool {
	for _, t := range r.Targets {
		if t.Site == site {
			return true
		}
	}
	return false
}

func routedSites(r *routing.Route) []string {
	var out []string
	for _, t := range r.Targets {
		if !slices.Contains(out, t.Site) {
			out = append(out, t.Site)
		}
	}
	sort.Strings(out)
	return out
}

// Restore brings a burnt site back: its backends, and its node restarted
// from its data dir (its etcd member rejoins the cluster). It returns once
// the node sees the store.
func (d *Demo) Restore(ctx context.Context, site string) error {
	d.mu.Lock()
	n, ok := d.nodes[site]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("no site %q", site)
	}
	if n != nil {
		return fmt.Errorf("site %s is running", site)
	}
	if err := d.backends.StartSite(d.top, site); err != nil {
		return err
	}
	for _, tn := range d.top.Nodes {
		if tn.Site == site {
			if err := d.startNode(ctx, tn); err != nil {
				return err
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.waitReady(rctx)
}

// Close stops every node and backend and removes a temporary data dir. It
// is safe to call more than once.
func (d *Demo) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	nodes := d.nodes
	d.nodes = map[string]*node.Node{}
	d.mu.Unlock()
	// The whole cluster goes, so a graceful leave would only wait for a
	// quorum that is about to vanish: nodes are aborted (stopped like a
	// crash; the data dir is removed or, when kept, their leases expire).
	// One at a time, the raft leader first: a leader's etcd member hands
	// leadership over when it stops, which is quick while its peers still
	// run and waits for a timeout (about 7 s) once they are gone.
	var errs []error
	left := make([]*node.Node, 0, len(nodes))
	for _, n := range nodes {
		if n != nil {
			left = append(left, n)
		}
	}
	for len(left) > 0 {
		i := 0
		for j, n := range left {
			if m := n.Member(); m != nil && m.IsRaftLeader() {
				i = j
				break
			}
		}
		n := left[i]
		left = slices.Delete(left, i, i+1)
		n.Abort()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
		cancel()
	}
	if d.backends != nil {
		d.backends.Close()
	}
	if d.tempDir {
		if err := os.RemoveAll(d.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DataDir is where the nodes keep their data.
func (d *Demo) DataDir() string { return d.dir }

// Addresses lists every TCP address the demo listens on while all sites
// run: each node's API, DNS (TCP side), etcd client and peer URLs, and
// every backend.
func (d *Demo) Addresses() []string {
	var out []string
	for _, n := range d.top.Nodes {
		out = append(out, n.API, n.DNS, hostPort(n.Client), hostPort(n.Peer))
	}
	for _, ep := range d.top.Endpoints() {
		out = append(out, net.JoinHostPort(ep.Address, fmt.Sprint(ep.Port)))
	}
	return out
}

// StillListening dials every address of Addresses and returns those that
// accept a connection (after Close: none should).
func (d *Demo) StillListening() []string {
	var out []string
	for _, a := range d.Addresses() {
		if c, err := net.DialTimeout("tcp", a, 500*time.Millisecond); err == nil {
			c.Close()
			out = append(out, a)
		}
	}
	return out
}

func hostPort(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	return strings.TrimSuffix(u, "/")
}
