package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// DefaultLeaseTTL is the liveness and election lease TTL.
const DefaultLeaseTTL = 3 * time.Second

// Component is a part of firebreak that runs on a node.
//
// Run is called once, on its own goroutine, after the node has started; it
// must return when ctx is done (the node is shutting down) and should
// return nil then. A non-nil error is logged; the node keeps running. Run
// must not call Close or Shutdown. Components reach the store through
// n.Client(), write liveness-bound keys through n.WithLease, and do
// leader-only work through n.WhileLeader.
type Component interface {
	Name() string
	Run(ctx context.Context, n *Node) error
}

// Config configures a node. Build one by hand or with FromTopology.
type Config struct {
	// Name is this node's name (required); it should name a node of the
	// topology.
	Name string
	// Site is the node's site (default: the topology node's site).
	Site string
	// Topology is the topology the node starts with (required) and
	// TopologySource its YAML; it is published to the store when the store
	// holds none, and replaced by the store's current topology otherwise.
	Topology       *topology.Topology
	TopologySource []byte
	// Member, when set, is the embedded etcd member this node runs; the
	// node's client talks to that member only, so the node sees exactly
	// what its site's member sees (stale when it is in a minority).
	Member *store.MemberConfig
	// MemberClientTLS is the node's client certificate for its own member
	// when the member's client URL is https (default: Member.ClientTLS,
	// whose certificate must then allow client auth).
	MemberClientTLS store.TLSFiles
	// External is used when Member is nil: a client of an existing etcd
	// cluster. Dial checks that an endpoint answers.
	External store.ClientConfig
	// LeaseTTL is the liveness/election lease TTL, a whole number of
	// seconds (default 3s).
	LeaseTTL time.Duration
	// QuorumInterval is how often the node proves the store has quorum with
	// a linearizable read; each read times out after the same interval
	// (default LeaseTTL/6, at least 100ms).
	QuorumInterval time.Duration
	// LeaveOnShutdown removes this node's member from the etcd cluster on
	// Shutdown (decommissioning a site). Default false: a restarted node
	// rejoins with its data dir.
	LeaveOnShutdown bool
	// KeepRaftLeader leaves etcd's raft leadership where it is when this
	// node becomes firebreak leader. Default false: the node asks raft to
	// move leadership to another member, so losing one site never costs a
	// raft election and a firebreak election at once (a raft election
	// extends every lease and would slow the failover).
	KeepRaftLeader bool
	// Version is the firebreak version published in NodeInfo.
	Version string
	// Logger receives the node's logs (default slog.Default()).
	Logger *slog.Logger
	// Components run on the node once it has started.
	Components []Component
}

// Node is a running firebreak node. Its methods are safe for concurrent use.
type Node struct {
	cfg       Config
	log       *slog.Logger
	member    atomic.Pointer[store.Member] // swapped only by tests (restartMember)
	memberChg *notifier
	cli       *clientv3.Client
	info      store.NodeInfo

	ctx        context.Context // loops
	cancel     context.CancelFunc
	compCtx    context.Context // components
	compCancel context.CancelFunc
	wg         sync.WaitGroup // loops
	compWG     sync.WaitGroup // components
	bg         sync.WaitGroup // helpers that end when the client closes

	topo        atomic.Pointer[topoState]
	topoChanged *notifier

	mu          sync.Mutex
	lease       clientv3.LeaseID
	leaseCtx    context.Context
	leaseCancel context.CancelFunc
	leader      *leaderState
	leaderName  string
	stale       bool
	staleSince  time.Time
	lastOK      time.Time
	leaseChg    *notifier
	leaderChg   *notifier
	staleChg    *notifier
	graceful    bool

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

type topoState struct {
	t   *topology.Topology
	rev int64
}

type leaderState struct {
	ctx    context.Context
	cancel context.CancelFunc
	key    string
	rev    int64
}

// Start validates cfg, starts the embedded member (if any), connects to the
// store and starts the node's loops and components. It returns without
// waiting for quorum: until the store answers, Stale reports true. A
// failed start leaves nothing running.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Name == "" {
		return nil, errors.New("node: name is empty")
	}
	if cfg.Topology == nil {
		return nil, errors.New("node: no topology")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second || cfg.LeaseTTL%time.Second != 0 {
		return nil, fmt.Errorf("node: lease TTL %s: expected a whole number of seconds, at least 1s", cfg.LeaseTTL)
	}
	if cfg.QuorumInterval == 0 {
		cfg.QuorumInterval = max(cfg.LeaseTTL/6, 100*time.Millisecond)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	self := cfg.Topology.Node(cfg.Name)
	if cfg.Site == "" && self != nil {
		cfg.Site = self.Site
	}
	n = &Node{
		cfg:         cfg,
		log:         cfg.Logger.With("node", cfg.Name),
		topoChanged: newNotifier(),
		leaseChg:    newNotifier(),
		leaderChg:   newNotifier(),
		staleChg:    newNotifier(),
		memberChg:   newNotifier(),
		stale:       true,
		done:        make(chan struct{}),
	}
	n.topo.Store(&topoState{t: cfg.Topology})
	n.info = store.NodeInfo{Name: cfg.Name, Site: cfg.Site, Version: cfg.Version, Started: time.Now().UTC()}
	if self != nil {
		n.info.API, n.info.DNS, n.info.Peer, n.info.Client = self.API, self.DNS, self.Peer, self.Client
	}
	started := n // the named result is nil on error returns
	defer func() {
		if err != nil {
			if started.cli != nil {
				started.cli.Close()
			}
			if m := started.member.Load(); m != nil {
				m.Close()
			}
		}
	}()
	if cfg.Member != nil {
		m, err := store.StartMember(*cfg.Member)
		if err != nil {
			return nil, err
		}
		n.member.Store(m)
		tlsFiles := cfg.MemberClientTLS
		if !tlsFiles.Enabled() {
			tlsFiles = m.Config().ClientTLS
		}
		n.cli, err = store.Dial(context.Background(), store.ClientConfig{Endpoints: []string{m.ClientURL()}, TLS: tlsFiles})
		if err != nil {
			return nil, err
		}
		n.info.Client = m.ClientURL()
		n.info.Peer = m.PeerURL()
	} else {
		ext := cfg.External
		ext.Check = true
		n.cli, err = store.Dial(ctx, ext)
		if err != nil {
			return nil, err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.compCtx, n.compCancel = context.WithCancel(n.ctx)
	n.loop("quorum", n.quorumLoop)
	n.loop("session", n.sessionLoop)
	n.loop("topology", n.topologyLoop)
	n.loop("leader-watch", n.leaderWatchLoop)
	if n.member.Load() != nil {
		n.loop("member", n.memberLoop)
	}
	for _, c := range cfg.Components {
		n.Go(c)
	}
	n.log.Info("node started", "site", cfg.Site, "embedded", n.member.Load() != nil, "lease_ttl", cfg.LeaseTTL)
	return n, nil
}

// loop runs fn on a goroutine owned by the node; a panic is logged and the
// loop restarted after a short delay.
func (n *Node) loop(name string, fn func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for n.ctx.Err() == nil {
			func() {
				defer func() {
					if r := recover(); r != nil {
						n.log.Error("loop panicked", "loop", name, "panic", r, "stack", string(debug.Stack()))
					}
				}()
				fn(n.ctx)
			}()
			sleep(n.ctx, time.Second)
		}
	}()
}

// Go runs a component on the node (Config.Components are started this way).
// It may be called any time before Close.
func (n *Node) Go(c Component) {
	n.compWG.Add(1)
	go func() {
		defer n.compWG.Done()
		defer func() {
			if r := recover(); r != nil {
				n.log.Error("component panicked", "component", c.Name(), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		if err := c.Run(n.compCtx, n); err != nil && n.compCtx.Err() == nil {
			n.log.Error("component stopped", "component", c.Name(), "err", err)
		}
	}()
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Site is the node's site.
func (n *Node) Site() string { return n.cfg.Site }

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Client is the node's store client. It stays valid until Close; do not
// close it.
func (n *Node) Client() *clientv3.Client { return n.cli }

// Member is the embedded member, or nil with an external store.
func (n *Node) Member() *store.Member { return n.member.Load() }

// Done is closed when the node has stopped (Close, or a fatal member error).
func (n *Node) Done() <-chan struct{} { return n.done }

// Topology returns the current topology and its store revision (0: the
// node's startup file, not yet confirmed from the store). The value is
// immutable; a new topology replaces it atomically.
func (n *Node) Topology() (*topology.Topology, int64) {
	s := n.topo.Load()
	return s.t, s.rev
}

// TopologyChanged returns a channel closed at the next topology change.
// Call it again after each change:
//
//	for {
//		ch := n.TopologyChanged()
//		t, rev := n.Topology()
//		use(t, rev)
//		select { case <-ch: case <-ctx.Done(): return }
//	}
func (n *Node) TopologyChanged() <-chan struct{} { return n.topoChanged.Wait() }

// Stale reports whether the node has lost contact with a quorum of the
// store, and since when (the time of its last successful quorum read; zero
// if it never had one). While stale, everything the node serves is its
// last good state.
func (n *Node) Stale() (bool, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stale, n.staleSince
}

// StaleChanged returns a channel closed at the next change of Stale.
func (n *Node) StaleChanged() <-chan struct{} { return n.staleChg.Wait() }

// Lease is the node's current liveness lease (0 while it has none, e.g.
// during a partition). Keys written with it vanish when the node dies. The
// lease changes when the old one expired (after a partition longer than
// the TTL); WithLease handles that.
func (n *Node) Lease() clientv3.LeaseID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lease
}

// WithLease runs fn once per lease generation with that lease and a ctx that
// is cancelled when the lease is lost (expired or the node shuts down). A
// component that writes keys under the node's lease must rewrite them in
// each generation, since a lost lease took them away. WithLease returns
// when ctx is done, with ctx.Err(); errors from fn are logged.
func (n *Node) WithLease(ctx context.Context, fn func(ctx context.Context, lease clientv3.LeaseID) error) error {
	for {
		ch := n.leaseChg.Wait()
		n.mu.Lock()
		lease, lctx := n.lease, n.leaseCtx
		n.mu.Unlock()
		if lease != 0 {
			n.runGeneration(ctx, lctx, "lease holder returned", func(fctx context.Context) error {
				return fn(fctx, lease)
			})
		} else {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// runGeneration runs fn for one generation (of the lease or of leadership)
// with a context cancelled when ctx or gen is done. An error from fn is
// logged as msg unless that context had already ended. It returns only when
// the generation has ended or ctx is done, so the caller never starts the
// next generation while this one is still alive.
func (n *Node) runGeneration(ctx, gen context.Context, msg string, fn func(ctx context.Context) error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(gen, cancel)
	defer stop()
	if err := fn(fctx); err != nil && fctx.Err() == nil {
		n.log.Warn(msg, "err", err)
	}
	select {
	case <-fctx.Done():
	case <-ctx.Done():
	}
}

// LeaseChanged returns a channel closed at the next change of Lease.
func (n *Node) LeaseChanged() <-chan struct{} { return n.leaseChg.Wait() }

// IsLeader reports whether this node holds the leader election and the
// store has quorum.
func (n *Node) IsLeader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader != nil
}

// Leader is the name of the node that holds the leader election as last
// seen by this node ("" if none or unknown).
func (n *Node) Leader() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaderName
}

// LeaderChanged returns a channel closed at the next change of IsLeader or
// Leader.
func (n *Node) LeaderChanged() <-chan struct{} { return n.leaderChg.Wait() }

// LeaderGuard returns comparisons that hold only while this node still
// holds the election key; add them to every leader-only transaction
// (store.CompareAndSwap's guard, or Txn.If) so a deposed leader's writes
// fail. ok is false when the node is not leader.
func (n *Node) LeaderGuard() (cmps []clientv3.Cmp, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leader == nil {
		return nil, false
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(n.leader.key), "=", n.leader.rev)}, true
}

// WhileLeader runs fn each time this node becomes leader, with a ctx that is
// cancelled when leadership is lost (lease expired, store without quorum,
// shutdown). It blocks until ctx is done and returns ctx.Err(); errors from
// fn are logged, and fn is not restarted until leadership is lost and won
// again.
func (n *Node) WhileLeader(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		ch := n.leaderChg.Wait()
		n.mu.Lock()
		ls := n.leader
		n.mu.Unlock()
		if ls != nil {
			n.runGeneration(ctx, ls.ctx, "leader task returned", fn)
		} else {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Local is what this node itself knows, without asking the store: it is
// what a status page shows for the node even when the store is unreachable.
type Local struct {
	Name        string    `json:"name"`
	Site        string    `json:"site"`
	IsLeader    bool      `json:"isLeader"`
	Leader      string    `json:"leader"`
	Stale       bool      `json:"stale"`
	StaleSince  time.Time `json:"staleSince,omitzero"`
	TopologyRev int64     `json:"topologyRev"`
	Lease       int64     `json:"lease"`
	Embedded    bool      `json:"embedded"`
}

// Local returns this node's own view; it never blocks on the store.
func (n *Node) Local() Local {
	_, rev := n.Topology()
	n.mu.Lock()
	defer n.mu.Unlock()
	return Local{
		Name: n.cfg.Name, Site: n.cfg.Site, IsLeader: n.leader != nil, Leader: n.leaderName,
		Stale: n.stale, StaleSince: n.staleSince, TopologyRev: rev, Lease: int64(n.lease),
		Embedded: n.member.Load() != nil,
	}
}

// Status gathers the control plane's status through this node's client.
func (n *Node) Status(ctx context.Context) (*store.Status, error) {
	return store.Gather(ctx, n.cli, time.Second)
}

// Close shuts the node down gracefully within 10 s; see Shutdown.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Shutdown(ctx)
}

// Shutdown stops the components (waiting for them until ctx is done),
// resigns leadership, deletes the liveness key and revokes the lease, leaves
// the cluster if Config.LeaveOnShutdown, then stops the client and the
// embedded member. It is idempotent; later calls return the first result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(ctx, true) })
	return n.closeErr
}

// Abort stops the node as a crash would: no resignation, no revocation, the
// lease expires on its own, and the other nodes take over after the TTL.
// Tests, benchmarks and drills use it to kill a node in-process.
func (n *Node) Abort() {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(context.Background(), false) })
}

func (n *Node) shutdown(ctx context.Context, graceful bool) error {
	var errs []error
	n.mu.Lock()
	n.graceful = graceful
	n.mu.Unlock()
	n.compCancel()
	if graceful {
		waitGroup(ctx, &n.compWG)
	}
	n.cancel() // the session loop resigns and revokes when graceful
	n.wg.Wait()
	if m := n.member.Load(); graceful && n.cfg.LeaveOnShutdown && m != nil {
		// etcd refuses the removal while the remaining members have not
		// all been connected for a few seconds (strict reconfig check):
		// retry until ctx ends.
		var err error
		for {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = n.cli.MemberRemove(rctx, m.ID())
			cancel()
			if err != nil && strings.Contains(err.Error(), "server stopped") {
				// Our client talks to our own member, which stops as soon
				// as it applies its own removal: the reply can be lost
				// to that stop, but the removal was committed.
				err = nil
			}
			if err == nil || !strings.Contains(err.Error(), "unhealthy cluster") || ctx.Err() != nil {
				break
			}
			sleep(ctx, 200*time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("leave cluster: %w", err))
		} else {
			n.log.Info("left the cluster")
		}
	}
	if err := n.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("close client: %w", err))
	}
	n.bg.Wait()
	if m := n.member.Load(); m != nil {
		m.Close()
	}
	waitGroup(ctx, &n.compWG)
	close(n.done)
	n.log.Info("node stopped", "graceful", graceful)
	return errors.Join(errs...)
}

func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-ctx.Done():
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
