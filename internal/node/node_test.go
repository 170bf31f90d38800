package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/certs"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// testTTL is the lease TTL of test nodes: short, but long enough that a
// loaded machine running -race keeps its keepalives.
const testTTL = 2 * time.Second

// freeURL returns http://host:port with a port free on host now.
func freeURL(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("listen %s: %v", host, err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// clusterYAML is a topology whose nodes declare peer URLs.
func clusterYAML(names, peers, clients []string) string {
	var b strings.Builder
	b.WriteString("name: test\nsites:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  site-%s: {role: datacenter}\n", n)
	}
	b.WriteString("nodes:\n")
	for i, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, site: site-%s, peer: %q, client: %q}\n", n, n, peers[i], clients[i])
	}
	return b.String()
}

func parse(t *testing.T, src string) *topology.Topology {
	t.Helper()
	top, err := topology.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse topology: %v\n%s", err, src)
	}
	return top
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FIREBREAK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// cluster is a set of nodes with embedded members on loopback.
type cluster struct {
	t     *testing.T
	nodes []*Node
	cfgs  []Config
	src   string
}

// startCluster starts n nodes, each with an embedded member on its own
// address of 127.0.10.x.
func startCluster(t *testing.T, n int) *cluster { return startClusterTLS(t, n, "") }

// startClusterTLS is startCluster with https peer and client URLs when
// certDir (made by package certs) is set.
func startClusterTLS(t *testing.T, n int, certDir string) *cluster {
	t.Helper()
	var names, peers, clients []string
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("127.0.10.%d", i+1)
		names = append(names, fmt.Sprintf("n%d", i+1))
		p, c := freeURL(t, host), freeURL(t, host)
		if certDir != "" {
			p, c = strings.Replace(p, "http:", "https:", 1), strings.Replace(c, "http:", "https:", 1)
		}
		peers = append(peers, p)
		clients = append(clients, c)
	}
	src := clusterYAML(names, peers, clients)
	top := parse(t, src)
	base := t.TempDir()
	c := &cluster{t: t, src: src}
	for _, name := range names {
		self := top.Node(name)
		opts := StoreOptions{DataDir: filepath.Join(base, name), TickMs: 50, ElectionMs: 500, Token: "test-" + t.Name()}
		if certDir != "" {
			files := store.TLSFiles{CAFile: filepath.Join(certDir, certs.CAFile), CertFile: filepath.Join(certDir, certs.CertFile(name)), KeyFile: filepath.Join(certDir, certs.KeyFile(name))}
			opts.PeerTLS, opts.ClientTLS = files, files
		}
		m, _, err := StoreFor(top, self, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.cfgs = append(c.cfgs, Config{
			Name: name, Topology: top, TopologySource: []byte(src), Member: m,
			LeaseTTL: testTTL, Logger: testLogger(t).With("n", name), Version: "test",
		})
	}
	// Members of a new cluster wait for each other: start them together.
	c.nodes = make([]*Node, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range c.cfgs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c.nodes[i], errs[i] = Start(context.Background(), c.cfgs[i])
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", names[i], err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd != nil {
				nd.Abort()
			}
		}
	})
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader waits until exactly one of the given nodes is leader and every
// one of them agrees on its name.
func waitLeader(t *testing.T, d time.Duration, nodes []*Node) *Node {
	t.Helper()
	var l *Node
	waitFor(t, d, "one leader known to all", func() bool {
		l = nil
		for _, n := range nodes {
			if n.IsLeader() {
				if l != nil {
					return false
				}
				l = n
			}
		}
		if l == nil {
			return false
		}
		for _, n := range nodes {
			if n.Leader() != l.Name() {
				return false
			}
		}
		return true
	})
	return l
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClusterLeaderKilled(t *testing.T) {
	c := startCluster(t, 3)
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, n.Name()+" has quorum", func() bool { s, _ := n.Stale(); return !s })
	}
	old := waitLeader(t, 20*time.Second, c.nodes)

	// Acknowledged writes, through the leader's own member.
	ctx := ctxT(t, 30*time.Second)
	const writes = 50
	for i := 0; i < writes; i++ {
		// A write is acknowledged when Put returns nil; a transient
		// failure (raft leadership moving) is retried.
		for {
			_, err := store.Put(ctx, old.Client(), fmt.Sprintf("%stest/%03d", store.Prefix, i), i)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
	}
	var rest []*Node
	for _, n := range c.nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	// Steady state: raft leadership has moved off the leader's member and
	// the lease extension that a raft leader change gives has run out.
	waitFor(t, 10*time.Second, "raft leadership off the firebreak leader", func() bool { return !old.Member().IsRaftLeader() })
	time.Sleep(testTTL) // not a synchronisation: lets the extended lease expiry pass, as in a steady cluster
	killed := time.Now()
	old.Abort() // like kill -9: no resignation, the lease expires by itself
	nl := waitLeader(t, testTTL+5*time.Second, rest)
	took := time.Since(killed)
	t.Logf("leader %s killed; %s leads after %s (lease TTL %s)", old.Name(), nl.Name(), took, testTTL)
	// The lease expires TTL after the last keepalive (sent every TTL/3),
	// and etcd checks expiries every 500 ms: TTL+0.5s is the bound on an
	// idle machine; allow another second for -race on shared cores.
	if took > testTTL+1500*time.Millisecond {
		t.Errorf("new leader after %s, want within the lease TTL %s (+0.5s expiry check, +1s slack)", took, testTTL)
	}
	for _, n := range rest {
		got, _, err := store.List[int](ctx, n.Client(), store.Prefix+"test/")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != writes {
			t.Errorf("%s sees %d acknowledged writes, want %d", n.Name(), len(got), writes)
		}
	}
	// The dead node's liveness key went with its lease.
	waitFor(t, 5*time.Second, "dead node's key to vanish", func() bool {
		resp, err := nl.Client().Get(ctx, store.NodeKey(old.Name()))
		return err == nil && len(resp.Kvs) == 0
	})
	st, err := nl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != nl.Name() || len(st.Nodes) != 2 || len(st.Members) != 3 {
		t.Errorf("status: leader %q, %d nodes, %d members; want %s, 2, 3", st.Leader, len(st.Nodes), len(st.Members), nl.Name())
	}
}

func TestPartitionedMinority(t *testing.T) {
	c := startCluster(t, 3)
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, n.Name()+" has quorum", func() bool { s, _ := n.Stale(); return !s })
		// The startup topology (rev 0) is confirmed from the store shortly
		// after start; wait for it so "unchanged while stale" is measured
		// from the store's version, not from a load still in flight.
		waitFor(t, 30*time.Second, n.Name()+" has the store's topology", func() bool { _, r := n.Topology(); return r > 0 })
	}
	// Cut off the leader: the worst case, a leader in a minority.
	cut := waitLeader(t, 20*time.Second, c.nodes)
	var rest []*Node
	for _, n := range c.nodes {
		if n != cut {
			rest = append(rest, n)
		}
	}
	before, beforeRev := cut.Topology()
	cut.stopMember()

	waitFor(t, 10*time.Second, cut.Name()+" to report stale", func() bool { s, _ := cut.Stale(); return s })
	if cut.IsLeader() {
		t.Fatal("a node without quorum still claims leadership")
	}
	if _, ok := cut.LeaderGuard(); ok {
		t.Fatal("a node without quorum hands out a leader guard")
	}
	if l := cut.Local(); !l.Stale || l.IsLeader || l.StaleSince.IsZero() {
		t.Errorf("Local() of the cut node: %+v", l)
	}
	if _, since := cut.Stale(); since.IsZero() || time.Since(since) > time.Minute {
		t.Errorf("stale since %v, want the time of the last good read", since)
	}
	// It keeps serving its last good topology.
	if got, rev := cut.Topology(); got != before || rev != beforeRev {
		t.Errorf("topology changed while stale: rev %d -> %d", beforeRev, rev)
	}
	nl := waitLeader(t, testTTL+10*time.Second, rest)

	// The majority moves on: a new topology and a write.
	ctx := ctxT(t, 30*time.Second)
	newSrc := c.src + "  - {name: extra, site: site-n1}\n"
	// The majority may still be settling its raft leadership (a proposal
	// made during the election is dropped): retry until it is accepted.
	var rev int64
	retried := false
	waitFor(t, 20*time.Second, "the majority to accept a new topology", func() bool {
		r, changed, err := store.PublishTopology(ctx, nl.Client(), "v2.yaml", []byte(newSrc))
		if err != nil {
			t.Logf("publish on the majority: %v (retrying)", err)
			retried = true
			return false
		}
		if !changed && !retried {
			t.Fatal("publish on the majority: topology unchanged")
		}
		// After a retry, "unchanged" means an earlier attempt committed
		// it; r is then the current revision either way.
		rev = r
		return true
	})
	waitFor(t, 20*time.Second, "the majority to accept a write", func() bool {
		_, err := store.Put(ctx, nl.Client(), store.RoutingKey("web"), "majority")
		return err == nil
	})
	if got, _ := cut.Topology(); got != before {
		t.Error("the cut node changed topology without quorum")
	}
	if cut.IsLeader() {
		t.Error("the cut node became leader without quorum")
	}

	// Rejoin: it catches up.
	if err := cut.restartMember(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, cut.Name()+" to regain quorum", func() bool { s, _ := cut.Stale(); return !s })
	waitFor(t, 10*time.Second, cut.Name()+" to load the new topology", func() bool { _, r := cut.Topology(); return r == rev })
	waitFor(t, 10*time.Second, cut.Name()+" to see the new leader", func() bool { return cut.Leader() == nl.Name() })
	if v, _, err := store.Get[string](ctx, cut.Client(), store.RoutingKey("web")); err != nil || v != "majority" {
		t.Errorf("rejoined node reads %q, %v", v, err)
	}
	waitFor(t, 10*time.Second, cut.Name()+" to publish liveness again", func() bool {
		resp, err := nl.Client().Get(ctx, store.NodeKey(cut.Name()))
		return err == nil && len(resp.Kvs) == 1 && cut.Lease() != 0
	})
	if cut.IsLeader() {
		t.Error("the rejoined node took leadership from the majority's leader")
	}
}

func singleConfig(t *testing.T, dir, src string) Config {
	t.Helper()
	top := parse(t, src)
	m, _, err := StoreFor(top, nil, "solo", StoreOptions{
		DataDir: dir, ClientURL: freeURL(t, "127.0.10.9"), PeerURL: freeURL(t, "127.0.10.9"), TickMs: 50, ElectionMs: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	return Config{Name: "solo", Topology: top, TopologySource: []byte(src), Member: m, LeaseTTL: testTTL, Logger: testLogger(t)}
}

type recorder struct {
	mu      sync.Mutex
	leases  []int64
	leading int
	stopped chan struct{}
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Run(ctx context.Context, n *Node) error {
	defer close(r.stopped)
	go func() {
		_ = n.WhileLeader(ctx, func(ctx context.Context) error {
			r.mu.Lock()
			r.leading++
			r.mu.Unlock()
			return nil
		})
	}()
	return n.WithLease(ctx, func(ctx context.Context, lease clientv3.LeaseID) error {
		r.mu.Lock()
		r.leases = append(r.leases, int64(lease))
		r.mu.Unlock()
		_, err := n.Client().Put(ctx, store.ObservationKey(n.Name(), "web/a/10.0.0.1:80"), `{"up":true}`, clientv3.WithLease(lease))
		return err
	})
}

func TestSingleNodeRestartAndApply(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	src := "sites:\n  a: {role: datacenter}\n"
	rec := &recorder{stopped: make(chan struct{})}
	cfg := singleConfig(t, dir, src)
	cfg.Components = []Component{rec}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Abort() })
	waitFor(t, 30*time.Second, "leadership", n.IsLeader)
	waitFor(t, 10*time.Second, "startup topology published", func() bool { _, r := n.Topology(); return r == 1 })
	ctx := ctxT(t, 30*time.Second)
	waitFor(t, 10*time.Second, "component observation under the lease", func() bool {
		resp, err := n.Client().Get(ctx, store.ObservationKey("solo", "web/a/10.0.0.1:80"))
		return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease == int64(n.Lease())
	})

	// apply: a new version is picked up by watch, without restart.
	ch := n.TopologyChanged()
	v2 := src + "  b: {role: witness}\n"
	rev, _, err := store.PublishTopology(ctx, n.Client(), "v2.yaml", []byte(v2))
	if err != nil || rev != 2 {
		t.Fatalf("publish v2: %d %v", rev, err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no topology change notification")
	}
	if top, r := n.Topology(); r != 2 || len(top.Sites) != 2 {
		t.Fatalf("after apply: rev %d, %d sites", r, len(top.Sites))
	}
	if _, err := store.Put(ctx, n.Client(), store.RoutingKey("web"), "kept"); err != nil {
		t.Fatal(err)
	}

	// Graceful shutdown: components stop, lease revoked, keys gone.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.stopped:
	default:
		t.Error("component still running after Close")
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Restart from the data dir: everything kept, the store's topology
	// (rev 2) wins over the startup file (rev 1 content).
	cfg2 := singleConfig(t, dir, src)
	cfg2.Member.ClientURL, cfg2.Member.PeerURL = cfg.Member.ClientURL, cfg.Member.PeerURL
	n2, err := Start(context.Background(), cfg2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Abort() })
	waitFor(t, 30*time.Second, "topology rev 2 after restart", func() bool { _, r := n2.Topology(); return r == 2 })
	if v, _, err := store.Get[string](ctx, n2.Client(), store.RoutingKey("web")); err != nil || v != "kept" {
		t.Errorf("after restart: %q, %v", v, err)
	}
	resp, err := n2.Client().Get(ctx, store.ObservationKey("solo", "web/a/10.0.0.1:80"))
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("the revoked lease's observation survived the restart: %v %v", resp, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.leading != 1 || len(rec.leases) != 1 {
		t.Errorf("recorder: leading %d times, %d leases; want 1, 1", rec.leading, len(rec.leases))
	}
}

func TestPickNodeAndStoreFor(t *testing.T) {
	top := parse(t, clusterYAML([]string{"a", "b"}, []string{"http://127.0.10.1:2380", "http://127.0.10.2:2380"}, []string{"http://127.0.10.1:2379", "http://127.0.10.2:2379"}))
	if _, err := PickNode(top, "", "elsewhere"); !errors.Is(err, ErrNodeUnknown) {
		t.Errorf("two nodes, no name: %v", err)
	}
	if n, err := PickNode(top, "", "b"); err != nil || n.Name != "b" {
		t.Errorf("by hostname: %v %v", n, err)
	}
	if _, err := PickNode(top, "zz", ""); !errors.Is(err, ErrNodeUnknown) {
		t.Errorf("unknown name: %v", err)
	}
	m, _, err := StoreFor(top, top.Node("a"), "a", StoreOptions{DataDir: "/tmp/x"})
	if err != nil || m == nil || m.InitialCluster != "a=http://127.0.10.1:2380,b=http://127.0.10.2:2380" || m.ClientURL != "http://127.0.10.1:2379" {
		t.Errorf("embedded cluster member: %+v %v", m, err)
	}
	ext := parse(t, "sites:\n  a: {}\nstore:\n  endpoints: [\"http://127.0.10.5:2379\"]\n")
	m, cc, err := StoreFor(ext, nil, "x", StoreOptions{})
	if err != nil || m != nil || len(cc.Endpoints) != 1 {
		t.Errorf("external: %+v %+v %v", m, cc, err)
	}
}

func TestClusterTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := certs.LoadOrCreateCA(dir, "test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, _, err := ca.Issue(dir, fmt.Sprintf("n%d", i), []string{fmt.Sprintf("127.0.10.%d", i), "localhost"}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	c := startClusterTLS(t, 3, dir)
	l := waitLeader(t, 30*time.Second, c.nodes)
	ctx := ctxT(t, 10*time.Second)
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 3 || len(st.Nodes) != 3 {
		t.Fatalf("status over TLS: %d members, %d nodes", len(st.Members), len(st.Nodes))
	}
	for _, m := range st.Members {
		if !m.Reachable || !strings.HasPrefix(m.PeerURLs[0], "https://") {
			t.Errorf("member %s: reachable %v, peer %v", m.Name, m.Reachable, m.PeerURLs)
		}
	}
	// A client without a certificate is refused by the member.
	_, err = store.Dial(ctx, store.ClientConfig{
		Endpoints: []string{l.Member().ClientURL()}, TLS: store.TLSFiles{CAFile: filepath.Join(dir, certs.CAFile)},
		DialTimeout: time.Second, Check: true,
	})
	if err == nil {
		t.Error("a client without a certificate was accepted")
	}
	// A client with the CA and a node certificate is accepted.
	cli, err := store.Dial(ctx, store.ClientConfig{
		Endpoints: []string{l.Member().ClientURL()},
		TLS:       store.TLSFiles{CAFile: filepath.Join(dir, certs.CAFile), CertFile: filepath.Join(dir, "n1.pem"), KeyFile: filepath.Join(dir, "n1-key.pem")},
		Check:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
}

// ownGoroutines counts goroutines running this package's code, other than
// tests themselves.
func ownGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	count := 0
	var sample string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "firebreak/internal/node.") && !strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "testing.(*T).Run") {
			count++
			sample = g
		}
	}
	return count, sample
}

func TestCloseLeaksNoGoroutine(t *testing.T) {
	rec := &recorder{stopped: make(chan struct{})}
	cfg := singleConfig(t, t.TempDir(), "sites:\n  a: {}\n")
	cfg.Components = []Component{rec}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "leadership", n.IsLeader)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, sample := ownGoroutines()
		if c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close, e.g.:\n%s", c, sample)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartBadConfig(t *testing.T) {
	top := parse(t, "sites:\n  a: {}\n")
	dir := t.TempDir()
	// A member that cannot start: a data dir of another cluster.
	good := singleConfig(t, dir, "sites:\n  a: {}\n")
	n, err := Start(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	other := good
	m := *good.Member
	m.Token = "another-cluster"
	other.Member = &m
	if _, err := Start(context.Background(), other); !errors.Is(err, store.ErrForeignDataDir) {
		t.Errorf("foreign data dir: %v", err)
	}
	// TLS asked for without files.
	m2 := *good.Member
	m2.ClientURL = strings.Replace(m2.ClientURL, "http:", "https:", 1)
	other.Member = &m2
	if _, err := Start(context.Background(), other); err == nil || !strings.Contains(err.Error(), "no certFile/keyFile") {
		t.Errorf("https without certificates: %v", err)
	}
	// An external store that does not answer.
	_, err = Start(context.Background(), Config{Name: "x", Topology: top, External: store.ClientConfig{
		Endpoints: []string{freeURL(t, "127.0.10.9")}, DialTimeout: time.Second,
	}})
	if !errors.Is(err, store.ErrUnreachable) {
		t.Errorf("unreachable external store: %v", err)
	}
}

func TestGracefulShutdownResignsAndLeaves(t *testing.T) {
	c := startCluster(t, 3)
	old := waitLeader(t, 30*time.Second, c.nodes)
	var rest []*Node
	for _, n := range c.nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	old.cfg.LeaveOnShutdown = true // read only by Shutdown, on this goroutine
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- old.Close() }()
	nl := waitLeader(t, 10*time.Second, rest)
	took := time.Since(start)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	t.Logf("%s resigned; %s leads %s after Close began", old.Name(), nl.Name(), took)
	// Resignation hands over at once; an expiring lease would take ~TTL.
	if took >= testTTL {
		t.Errorf("new leader after %s; a resignation should not wait for the lease TTL %s", took, testTTL)
	}
	ctx := ctxT(t, 10*time.Second)
	ml, err := nl.Client().MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 2 {
		t.Errorf("%d members after leaving, want 2", len(ml.Members))
	}
	resp, err := nl.Client().Get(ctx, store.NodeKey(old.Name()))
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("liveness key of the departed node: %v %v", resp, err)
	}
	// The two left still have quorum (2 of 2) and accept writes.
	if _, err := store.Put(ctx, nl.Client(), store.RoutingKey("web"), "after-leave"); err != nil {
		t.Errorf("write after a member left: %v", err)
	}
}

func TestExternalStore(t *testing.T) {
	// An "external" etcd: a member this node does not own.
	m, err := store.StartMember(store.MemberConfig{
		Name: "etcd1", Dir: t.TempDir(), ClientURL: freeURL(t, "127.0.10.8"), PeerURL: freeURL(t, "127.0.10.8"),
		TickMs: 50, ElectionMs: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	src := "sites:\n  a: {}\nstore:\n  endpoints: [\"" + m.ClientURL() + "\"]\n"
	top := parse(t, src)
	member, ext, err := StoreFor(top, nil, "client-only", StoreOptions{})
	if err != nil || member != nil {
		t.Fatalf("StoreFor: %v %v", member, err)
	}
	n, err := Start(context.Background(), Config{Name: "client-only", Topology: top, TopologySource: []byte(src), External: ext, LeaseTTL: testTTL, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Abort() })
	if n.Member() != nil {
		t.Error("a client of an external store runs a member")
	}
	waitFor(t, 30*time.Second, "leadership through the external store", n.IsLeader)
	waitFor(t, 10*time.Second, "topology published", func() bool { _, r := n.Topology(); return r == 1 })

	// The external cluster going away makes the node stale, not dead.
	m.Close()
	waitFor(t, 10*time.Second, "stale without the external store", func() bool { s, _ := n.Stale(); return s })
	if n.IsLeader() {
		t.Error("still leader without the store")
	}
}
