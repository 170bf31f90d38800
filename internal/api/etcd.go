package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// EtcdConfig configures Etcd. Zero values take the documented defaults.
type EtcdConfig struct {
	// Node is this node's name (reported in snapshots).
	Node string
	// QuorumInterval is how often a linearizable read checks that the
	// store still has quorum (default 1s); QuorumTimeout bounds it
	// (default 1s).
	QuorumInterval, QuorumTimeout time.Duration
	// MemberInterval is how often etcd members are asked for their status
	// (default 5s).
	MemberInterval time.Duration
	// WriteTimeout bounds every write (default 5s).
	WriteTimeout time.Duration
	// ReadyTimeout is how long Snapshot waits for the first full read
	// before failing (default 3s).
	ReadyTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Etcd implements view.State and view.Actions over an etcd client: it
// keeps a copy of the store's prefixes up to date with watches, detects
// the loss of quorum (then serves the last state, flagged stale), and
// writes overrides together with their audit record in one transaction.
// Call Run to start it.
type Etcd struct {
	cli *clientv3.Client
	cfg EtcdConfig
	log *slog.Logger
	seq atomic.Uint64

	ready     chan struct{}
	readyOnce sync.Once

	mu          sync.Mutex
	loaded      map[string]bool
	topo        *topology.Topology
	topoRev     int64
	epVerdicts  map[string]decide.EndpointVerdict
	siteVerdict map[string]decide.SiteVerdict
	routes      map[string]*routing.Route
	obs         map[string]map[string]probe.Observation
	overrides   map[string]decide.Override
	history     []decide.Event
	nodes       map[string]view.NodeInfo
	leader      string
	revision    int64
	health      view.StoreHealth
	stale       bool
	staleSince  time.Time
	snap        *view.Snapshot
	dirty       bool
	built       time.Time
	// reloading counts prefixes being listed again; snapshots are not
	// rebuilt meanwhile, so a half-reloaded section is never shown.
	reloading int
	subs      map[chan view.Event]struct{}
}

// keep history events in memory (the snapshot shows the newest).
const historyKeep = 1000

// historyRawEnd bounds raw history keys (digits sort below ':').
const historyRawEnd = store.HistoryPrefix + ":"

// NewEtcd returns the store-backed state of node cfg.Node.
func NewEtcd(cli *clientv3.Client, cfg EtcdConfig, logger *slog.Logger) *Etcd {
	if cfg.QuorumInterval <= 0 {
		cfg.QuorumInterval = time.Second
	}
	if cfg.QuorumTimeout <= 0 {
		cfg.QuorumTimeout = time.Second
	}
	if cfg.MemberInterval <= 0 {
		cfg.MemberInterval = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Etcd{cli: cli, cfg: cfg, log: logger.With("component", "api-state"), ready: make(chan struct{}),
		loaded: map[string]bool{}, epVerdicts: map[string]decide.EndpointVerdict{}, siteVerdict: map[string]decide.SiteVerdict{},
		routes: map[string]*routing.Route{}, obs: map[string]map[string]probe.Observation{}, overrides: map[string]decide.Override{},
		nodes: map[string]view.NodeInfo{}, subs: map[chan view.Event]struct{}{}, dirty: true}
}

// watched prefixes, in the order they are loaded.
var watched = []string{store.TopologyCurrent, store.NodesPrefix, store.ElectionPrefix, store.ObservationsPrefix,
	store.VerdictsPrefix, store.RoutingPrefix, store.OverridesPrefix, store.HistoryPrefix}

// Run keeps the state up to date until ctx ends; it returns ctx.Err().
func (e *Etcd) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range watched {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.follow(ctx, p)
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); e.quorumLoop(ctx) }()
	go func() { defer wg.Done(); e.memberLoop(ctx) }()
	wg.Wait()
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// follow lists prefix, then watches it; it lists again after any watch
// failure (compaction, lost leader).
func (e *Etcd) follow(ctx context.Context, prefix string) {
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		key := prefix
		if prefix == store.HistoryPrefix {
			// Raw events only (<ts>-<seq> keys sort below ":"); daily
			// rollups live under decide.RollupPrefix.
			key = store.HistoryPrefix + "0"
			opts = []clientv3.OpOption{clientv3.WithRange(historyRawEnd),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(historyKeep)}
		}
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := e.cli.Get(gctx, key, opts...)
		cancel()
		if err != nil {
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		e.load(ctx, prefix, resp)
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Canceled || wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				e.apply(ctx, prefix, string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete, true)
			}
		}
		wcancel()
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// load replaces the section of prefix with a full listing.
func (e *Etcd) load(ctx context.Context, prefix string, resp *clientv3.GetResponse) {
	e.mu.Lock()
	e.reloading++
	switch prefix {
	case store.NodesPrefix:
		e.nodes = map[string]view.NodeInfo{}
	case store.ObservationsPrefix:
		e.obs = map[string]map[string]probe.Observation{}
	case store.VerdictsPrefix:
		e.epVerdicts, e.siteVerdict = map[string]decide.EndpointVerdict{}, map[string]decide.SiteVerdict{}
	case store.RoutingPrefix:
		e.routes = map[string]*routing.Route{}
	case store.OverridesPrefix:
		e.overrides = map[string]decide.Override{}
	case store.HistoryPrefix:
		e.history = nil
	}
	e.mu.Unlock()
	kvs := resp.Kvs
	if prefix == store.HistoryPrefix { // fetched newest first
		for i := len(kvs) - 1; i >= 0; i-- {
			e.apply(ctx, prefix, string(kvs[i].Key), kvs[i].Value, kvs[i].ModRevision, false, false)
		}
	} else {
		for _, kv := range kvs {
			e.apply(ctx, prefix, string(kv.Key), kv.Value, kv.ModRevision, false, false)
		}
	}
	if prefix == store.TopologyCurrent && len(kvs) == 0 {
		e.mu.Lock()
		e.topo, e.topoRev = nil, 0
		e.mu.Unlock()
	}
	if prefix == store.ElectionPrefix {
		e.refreshLeader(ctx, false)
	}
	e.mu.Lock()
	e.reloading--
	e.loaded[prefix] = true
	e.dirty = true
	if resp.Header.Revision > e.revision {
		e.revision = resp.Header.Revision
	}
	all := len(e.loaded) == len(watched)
	e.mu.Unlock()
	if all {
		e.readyOnce.Do(func() { close(e.ready) })
	}
}

// apply records one key's new value (or deletion) and, when publish is
// set, tells subscribers.
func (e *Etcd) apply(ctx context.Context, prefix, key string, val []byte, modRev int64, deleted, publish bool) {
	ev := view.Event{Revision: modRev, Deleted: deleted}
	if !deleted && json.Valid(val) {
		ev.Data = append(json.RawMessage(nil), val...)
	}
	decode := func(v any) bool {
		if err := json.Unmarshal(val, v); err != nil {
			e.log.Warn("undecodable value in store", "key", key, "err", err)
			return false
		}
		return true
	}
	switch prefix {
	case store.TopologyCurrent:
		ev.Kind, ev.Key = view.KindTopology, string(val)
		if deleted {
			break
		}
		rev, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil {
			e.log.Warn("bad topology revision", "value", string(val))
			return
		}
		t, err := e.loadTopology(ctx, rev)
		if err != nil {
			e.log.Warn("load topology", "rev", rev, "err", err)
			return
		}
		e.mu.Lock()
		e.topo, e.topoRev = t, rev
		e.mu.Unlock()
	case store.NodesPrefix:
		name := strings.TrimPrefix(key, prefix)
		ev.Kind, ev.Key = view.KindNode, name
		var n view.NodeInfo
		e.mu.Lock()
		if deleted {
			delete(e.nodes, name)
		} else if decode(&n) {
			if n.Name == "" {
				n.Name = name
			}
			e.nodes[name] = n
		}
		e.mu.Unlock()
	case store.ElectionPrefix:
		ev.Kind = view.KindLeader
		if publish {
			e.refreshLeader(ctx, true)
			return
		}
	case store.ObservationsPrefix:
		rest := strings.TrimPrefix(key, prefix)
		observer, ep, _ := strings.Cut(rest, "/")
		ev.Kind, ev.Key = view.KindObservation, rest
		var o probe.Observation
		e.mu.Lock()
		if deleted {
			delete(e.obs[observer], ep)
			if len(e.obs[observer]) == 0 {
				delete(e.obs, observer)
			}
		} else if decode(&o) {
			if e.obs[observer] == nil {
				e.obs[observer] = map[string]probe.Observation{}
			}
			e.obs[observer][ep] = o
		}
		e.mu.Unlock()
	case store.VerdictsPrefix:
		ev.Kind = view.KindVerdict
		e.mu.Lock()
		if id, ok := strings.CutPrefix(key, store.EndpointVerdictsPrefix); ok {
			ev.Key = id
			mirror(e.epVerdicts, id, deleted, decode)
		} else if site, ok := strings.CutPrefix(key, store.SiteVerdictsPrefix); ok {
			ev.Key = site
			mirror(e.siteVerdict, site, deleted, decode)
		}
		e.mu.Unlock()
	case store.RoutingPrefix:
		svc := strings.TrimPrefix(key, prefix)
		ev.Kind, ev.Key = view.KindRouting, svc
		var r routing.Route
		e.mu.Lock()
		if deleted {
			delete(e.routes, svc)
		} else if decode(&r) {
			if r.Revision == 0 {
				r.Revision = modRev
			}
			e.routes[svc] = &r
		}
		e.mu.Unlock()
	case store.OverridesPrefix:
		id := strings.TrimPrefix(key, prefix)
		ev.Kind, ev.Key = view.KindOverride, id
		e.mu.Lock()
		mirror(e.overrides, id, deleted, decode)
		e.mu.Unlock()
	case store.HistoryPrefix:
		ev.Kind, ev.Key = view.KindHistory, strings.TrimPrefix(key, prefix)
		var h decide.Event
		if strings.HasPrefix(key, decide.RollupPrefix) || deleted {
			return // compaction moves events into rollups: nothing new
		}
		if !decode(&h) {
			break
		}
		e.mu.Lock()
		e.history = append(e.history, h)
		if len(e.history) > historyKeep*2 {
			e.history = append([]decide.Event(nil), e.history[len(e.history)-historyKeep:]...)
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.dirty = true
	if modRev > e.revision {
		e.revision = modRev
	}
	e.mu.Unlock()
	if publish {
		e.publish(ev)
	}
}

// mirror copies one store key into m: it removes name when the key was
// deleted, otherwise stores the decoded value under name (an undecodable
// value, already logged by decode, leaves m as it was).
func mirror[T any](m map[string]T, name string, deleted bool, decode func(any) bool) {
	if deleted {
		delete(m, name)
		return
	}
	var v T
	if decode(&v) {
		m[name] = v
	}
}

func (e *Etcd) loadTopology(ctx context.Context, rev int64) (*topology.Topology, error) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := e.cli.Get(gctx, store.TopologyKey(rev))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("topology revision %d: %w", rev, view.ErrNotFound)
	}
	return topology.Parse(fmt.Sprintf("store:topology@%d", rev), resp.Kvs[0].Value)
}

func (e *Etcd) refreshLeader(ctx context.Context, publish bool) {
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := e.cli.Get(gctx, store.ElectionKey(store.RoleLeader)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return
	}
	leader := ""
	if len(resp.Kvs) > 0 {
		leader = string(resp.Kvs[0].Value)
	}
	e.mu.Lock()
	changed := leader != e.leader
	e.leader = leader
	e.dirty = true
	e.mu.Unlock()
	if changed && publish {
		e.publish(view.Event{Kind: view.KindLeader, Key: leader, Revision: resp.Header.Revision})
	}
}

func (e *Etcd) quorumLoop(ctx context.Context) {
	for {
		qctx, cancel := context.WithTimeout(ctx, e.cfg.QuorumTimeout)
		_, err := e.cli.Get(qctx, store.TopologyCurrent)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := e.cfg.Now()
		e.mu.Lock()
		var ev *view.Event
		if err == nil {
			e.health.Quorum, e.health.LastOK, e.health.Error = true, now, ""
			if e.stale {
				e.stale = false
				ev = &view.Event{Kind: view.KindStore, Key: "quorum", Data: []byte(`{"stale":false}`)}
			}
		} else {
			e.health.Quorum, e.health.Error = false, err.Error()
			if !e.stale {
				e.stale = true
				e.staleSince = e.health.LastOK
				if e.staleSince.IsZero() {
					e.staleSince = now
				}
				b, _ := json.Marshal(map[string]any{"stale": true, "staleSince": e.staleSince})
				ev = &view.Event{Kind: view.KindStore, Key: "quorum", Data: b}
			}
		}
		e.dirty = true
		e.mu.Unlock()
		if ev != nil {
			e.publish(*ev)
		}
		if !sleepCtx(ctx, e.cfg.QuorumInterval) {
			return
		}
	}
}

func (e *Etcd) memberLoop(ctx context.Context) {
	for {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ml, err := e.cli.MemberList(mctx)
		cancel()
		if err == nil {
			var members []view.Member
			for _, m := range ml.Members {
				vm := view.Member{Name: m.Name, ID: fmt.Sprintf("%x", m.ID)}
				for _, u := range m.ClientURLs {
					sctx, cancel := context.WithTimeout(ctx, time.Second)
					sr, err := e.cli.Status(sctx, u)
					cancel()
					if err != nil {
						vm.Error = err.Error()
						continue
					}
					vm.Reachable, vm.Error = true, ""
					vm.RaftLeader = sr.Leader == m.ID
					vm.DBSize = sr.DbSize
					break
				}
				members = append(members, vm)
			}
			sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
			e.mu.Lock()
			e.health.Members = members
			e.dirty = true
			e.mu.Unlock()
		}
		if !sleepCtx(ctx, e.cfg.MemberInterval) {
			return
		}
	}
}

func (e *Etcd) publish(ev view.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default: // slow reader: it re-reads the snapshot on the next event
		}
	}
}

// Subscribe implements view.State.
func (e *Etcd) Subscribe(ctx context.Context) <-chan view.Event {
	ch := make(chan view.Event, 256)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.subs, ch)
		close(ch)
		e.mu.Unlock()
	}()
	return ch
}

// Snapshot implements view.State.
func (e *Etcd) Snapshot(ctx context.Context) (*view.Snapshot, error) {
	select {
	case <-e.ready:
	default:
		t := time.NewTimer(e.cfg.ReadyTimeout)
		defer t.Stop()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, fmt.Errorf("state of node %s: first read of the store not finished: %w", e.cfg.Node, view.ErrUnavailable)
		}
	}
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.snap != nil && ((!e.dirty && now.Sub(e.built) < time.Second) || e.reloading > 0) {
		return e.snap, nil
	}
	raw := &view.Raw{Node: e.cfg.Node, Now: now, Revision: e.revision, Topology: e.topo, TopologyRev: e.topoRev,
		EndpointVerdicts: e.epVerdicts, SiteVerdicts: e.siteVerdict, Routes: e.routes, Observations: e.obs,
		Overrides: e.overrides, History: e.history, Live: e.nodes, Leader: e.leader, Store: e.health,
		Stale: e.stale, StaleSince: e.staleSince}
	if e.stale {
		raw.StaleReason = "this node has lost its store quorum; showing the last state it read"
		if e.health.Error != "" {
			raw.StaleReason += " (" + e.health.Error + ")"
		}
	}
	raw.Store.Members = append([]view.Member(nil), e.health.Members...)
	e.snap = view.Build(raw)
	e.dirty, e.built = false, now
	return e.snap, nil
}

// History implements view.State: events at or after since, oldest first,
// from the daily rollups and the raw events (decide.ReadHistory). Without
// quorum it reads the raw events of the local member (serializable).
func (e *Etcd) History(ctx context.Context, since time.Time) ([]decide.Event, error) {
	gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	evs, err := decide.ReadHistory(gctx, e.cli, since)
	cancel()
	if err == nil {
		return evs, nil
	}
	from := store.SeqKey(store.HistoryPrefix, since, 0)
	gctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, serr := e.cli.Get(gctx, from, clientv3.WithRange(historyRawEnd), clientv3.WithSerializable())
	if serr != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	out := make([]decide.Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ev decide.Event
		if json.Unmarshal(kv.Value, &ev) == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Topology returns the current topology (nil before one is published).
func (e *Etcd) Topology() *topology.Topology {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.topo
}

func safeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// newID is the ID of an override of kind on target: one per kind and
// target (the convention of internal/decide), so repeating a drain
// refreshes it instead of stacking a second one.
func newID(kind, target string) string {
	if target == "" {
		return kind
	}
	return kind + "-" + safeID(target)
}

func (e *Etcd) checkTarget(o decide.Override) error {
	t := e.Topology()
	if t == nil {
		return nil // nothing to check against yet
	}
	switch o.Kind {
	case decide.KindDrain:
		if t.Site(o.Target) == nil {
			return fmt.Errorf("site %q: %w in topology revision %d", o.Target, view.ErrNotFound, e.topoRevision())
		}
	case decide.KindForceUp, decide.KindForceDown:
		for _, ep := range t.Endpoints() {
			if ep.ID() == o.Target {
				return nil
			}
		}
		return fmt.Errorf("endpoint %q: %w (expected service/site/address:port)", o.Target, view.ErrNotFound)
	case decide.KindFreeze:
		if o.Target != "" && t.Service(o.Target) == nil {
			return fmt.Errorf("service %q: %w", o.Target, view.ErrNotFound)
		}
	}
	return nil
}

func (e *Etcd) topoRevision() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.topoRev
}

func (e *Etcd) isStale() (bool, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stale, e.staleSince
}

// write stores the overrides and one audit record in one transaction.
func (e *Etcd) write(ctx context.Context, c view.Change, action, target string, now time.Time, detail any, os ...view.Override) error {
	if stale, since := e.isStale(); stale {
		return fmt.Errorf("node %s has no store quorum since %s: %w", e.cfg.Node, since.Format(time.RFC3339), view.ErrUnavailable)
	}
	rec := view.AuditRecord{Time: now, Who: c.Who, Role: c.Role, Action: action, Subject: target, Reason: c.Why, Via: c.Via, Remote: c.Remote, Detail: detail}
	rb, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	key := store.SeqKey(store.AuditPrefix, now, e.seq.Add(1))
	ops := []clientv3.Op{clientv3.OpPut(key, string(rb))}
	var cmps []clientv3.Cmp
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	for _, o := range os {
		b, err := json.Marshal(o.Override)
		if err != nil {
			return fmt.Errorf("encode override: %w", err)
		}
		ops = append(ops, clientv3.OpPut(store.OverrideKey(o.ID), string(b)))
	}
	wctx, cancel := context.WithTimeout(ctx, e.cfg.WriteTimeout)
	defer cancel()
	resp, err := e.cli.Txn(wctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("write %s: %v: %w", action, err, view.ErrUnavailable)
	}
	if !resp.Succeeded {
		return fmt.Errorf("write %s: audit key %s already exists; retry", action, key)
	}
	return nil
}

// Drain implements view.Actions.
func (e *Etcd) Drain(ctx context.Context, c view.Change, site string, ttl time.Duration) (view.Override, error) {
	now := e.cfg.Now().UTC()
	o := decide.Override{ID: newID(decide.KindDrain, site), Kind: decide.KindDrain, Target: site, Who: c.Who, Why: c.Why,
		Created: now, Expires: now.Add(ttl)}
	return e.create(ctx, c, "drain", o)
}

// SetOverride implements view.Actions.
func (e *Etcd) SetOverride(ctx context.Context, c view.Change, o decide.Override) (view.Override, error) {
	now := e.cfg.Now().UTC()
	if o.Created.IsZero() {
		o.Created = now
	}
	if o.ID == "" {
		o.ID = newID(o.Kind, o.Target)
	}
	if o.Who == "" {
		o.Who = c.Who
	}
	if o.Why == "" {
		o.Why = c.Why
	}
	return e.create(ctx, c, "override.create", o)
}

func (e *Etcd) create(ctx context.Context, c view.Change, action string, o decide.Override) (view.Override, error) {
	if err := o.Validate(); err != nil {
		return view.Override{}, fmt.Errorf("%w: %v", view.ErrInvalid, err)
	}
	if err := e.checkTarget(o); err != nil {
		return view.Override{}, err
	}
	vo := view.Override{Override: o, Active: o.Active(e.cfg.Now())}
	if err := e.write(ctx, c, action, o.Target, o.Created, o, vo); err != nil {
		return view.Override{}, err
	}
	return vo, nil
}

func (e *Etcd) readOverrides(ctx context.Context) (map[string]decide.Override, error) {
	gctx, cancel := context.WithTimeout(ctx, e.cfg.WriteTimeout)
	defer cancel()
	resp, err := e.cli.Get(gctx, store.OverridesPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read overrides: %v: %w", err, view.ErrUnavailable)
	}
	out := map[string]decide.Override{}
	for _, kv := range resp.Kvs {
		var o decide.Override
		if json.Unmarshal(kv.Value, &o) == nil {
			out[strings.TrimPrefix(string(kv.Key), store.OverridesPrefix)] = o
		}
	}
	return out, nil
}

// Undrain implements view.Actions.
func (e *Etcd) Undrain(ctx context.Context, c view.Change, site string) ([]view.Override, error) {
	all, err := e.readOverrides(ctx)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now().UTC()
	var ended []view.Override
	for _, o := range all {
		if o.Kind == decide.KindDrain && o.Target == site && o.Active(now) {
			o.Expires = now
			ended = append(ended, view.Override{Override: o})
		}
	}
	if len(ended) == 0 {
		return nil, fmt.Errorf("site %q has no active drain: %w", site, view.ErrNotFound)
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].ID < ended[j].ID })
	ids := make([]string, len(ended))
	for i, o := range ended {
		ids[i] = o.ID
	}
	if err := e.write(ctx, c, "undrain", site, now, map[string]any{"expired": ids}, ended...); err != nil {
		return nil, err
	}
	return ended, nil
}

// ExpireOverride implements view.Actions.
func (e *Etcd) ExpireOverride(ctx context.Context, c view.Change, id string) (view.Override, error) {
	all, err := e.readOverrides(ctx)
	if err != nil {
		return view.Override{}, err
	}
	o, ok := all[id]
	if !ok {
		return view.Override{}, fmt.Errorf("override %q: %w", id, view.ErrNotFound)
	}
	now := e.cfg.Now().UTC()
	if !o.Active(now) {
		return view.Override{Override: o}, nil
	}
	o.Expires = now
	if !o.Expires.After(o.Created) {
		o.Created = now.Add(-time.Nanosecond)
	}
	vo := view.Override{Override: o}
	if err := e.write(ctx, c, "override.expire", id, now, o, vo); err != nil {
		return view.Override{}, err
	}
	return vo, nil
}

// Audit implements view.Actions.
func (e *Etcd) Audit(ctx context.Context, since time.Time, limit int) ([]view.AuditRecord, error) {
	from := store.SeqKey(store.AuditPrefix, since, 0)
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(store.AuditPrefix))}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	gctx, cancel := context.WithTimeout(ctx, e.cfg.WriteTimeout)
	defer cancel()
	resp, err := e.cli.Get(gctx, from, opts...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %v: %w", err, view.ErrUnavailable)
	}
	out := make([]view.AuditRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r view.AuditRecord
		if json.Unmarshal(kv.Value, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

var (
	_ view.State   = (*Etcd)(nil)
	_ view.Actions = (*Etcd)(nil)
)
