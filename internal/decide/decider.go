package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
)

// ErrNotLeader is returned by Decider.Run when its guard says this node no
// longer leads (a deposed leader stops writing).
var ErrNotLeader = errors.New("decide: not the leader")

// maxTxnOps stays under etcd's default --max-txn-ops (128).
const maxTxnOps = 100

// DeciderConfig configures the store layer of the decider.
type DeciderConfig struct {
	// Client is the store client (required).
	Client *clientv3.Client
	// Engine holds the topology and rules (required).
	Engine *Engine
	// Guard returns comparisons that hold only while this node leads, and
	// false when it does not (node.Node.LeaderGuard fits). Every write is a
	// transaction under them. Nil: no guard (tests, single node).
	Guard func() ([]clientv3.Cmp, bool)
	// Tick is how often the decider checks whether a time-based rule
	// (State.NextWake) needs a decision without a store event (default
	// 200ms). Store events are decided at once.
	Tick time.Duration
	// Timeout bounds one store operation (default 2s).
	Timeout time.Duration
	// CompactAfter: history events older than this are compacted into daily
	// rollups, and overrides expired longer ago are deleted (default 24h;
	// negative disables both).
	CompactAfter time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Decider runs Engine.Step on the store's observations, live nodes and
// overrides and writes verdicts, routing and history. Run it only while
// leader (node.Node.WhileLeader).
type Decider struct {
	cfg DeciderConfig
	log *slog.Logger

	mu    sync.Mutex
	state *State
	seq   uint64
}

// NewDecider validates cfg.
func NewDecider(cfg DeciderConfig) (*Decider, error) {
	if cfg.Client == nil || cfg.Engine == nil {
		return nil, errors.New("decide: client and engine are required")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 200 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.CompactAfter == 0 {
		cfg.CompactAfter = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Decider{cfg: cfg, log: cfg.Logger.With("component", "decide")}, nil
}

// State returns the last state written to the store (nil before the first).
func (d *Decider) State() *State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// world is the decider's mirror of the store.
type world struct {
	live      map[string]bool
	obs       *Table
	overrides map[string]Override
}

// Run decides until ctx is done (returns ctx.Err()) or the guard fails
// (returns ErrNotLeader).
func (d *Decider) Run(ctx context.Context) error {
	w, prev, rev, err := d.load(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodes := d.cfg.Client.Watch(ctx, store.NodesPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithKeysOnly())
	obs := d.cfg.Client.Watch(ctx, store.ObservationsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
	ovr := d.cfg.Client.Watch(ctx, store.OverridesPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	quorum := true
	lastCompact := time.Time{}
	dirty := true
	var lastStep time.Time
	for {
		now := d.cfg.Now()
		wake := prev.NextWake
		if dirty || !quorum || (!wake.IsZero() && !now.Before(wake)) || now.Sub(lastStep) >= resync {
			dirty = false
			lastStep = now
			if err := d.step(ctx, w, &prev, &quorum); err != nil {
				return err
			}
		}
		if d.cfg.CompactAfter > 0 && now.Sub(lastCompact) > time.Hour {
			lastCompact = now
			if n, err := CompactHistory(ctx, d.cfg.Client, now.Add(-d.cfg.CompactAfter), d.guard); err != nil {
				d.log.Warn("compact history", "err", err)
			} else if n > 0 {
				d.log.Info("compacted history into rollups", "events", n)
			}
			if n, err := PruneOverrides(ctx, d.cfg.Client, now.Add(-d.cfg.CompactAfter), d.guard); err != nil {
				d.log.Warn("prune expired overrides", "err", err)
			} else if n > 0 {
				d.log.Info("pruned expired overrides", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			continue
		case wr, ok := <-nodes:
			if !ok {
				return ctx.Err()
			}
			d.watchErr("nodes", wr, &quorum)
			applyNodes(w, wr.Events)
		case wr, ok := <-obs:
			if !ok {
				return ctx.Err()
			}
			d.watchErr("observations", wr, &quorum)
			applyObs(w, wr.Events)
		case wr, ok := <-ovr:
			if !ok {
				return ctx.Err()
			}
			d.watchErr("overrides", wr, &quorum)
			applyOverrides(w, wr.Events)
		}
		dirty = true
		// Coalesce a burst: take whatever else is ready before deciding.
	drain:
		for {
			select {
			case wr, ok := <-nodes:
				if !ok {
					break drain
				}
				applyNodes(w, wr.Events)
			case wr, ok := <-obs:
				if !ok {
					break drain
				}
				applyObs(w, wr.Events)
			case wr, ok := <-ovr:
				if !ok {
					break drain
				}
				applyOverrides(w, wr.Events)
			default:
				break drain
			}
		}
	}
}

// resync is how often the decider decides even when nothing changed.
const resync = 5 * time.Second

func (d *Decider) watchErr(what string, wr clientv3.WatchResponse, quorum *bool) {
	if err := wr.Err(); err != nil {
		d.log.Warn("watch", "prefix", what, "err", err)
		*quorum = false
	}
}

func (d *Decider) guard() ([]clientv3.Cmp, bool) {
	if d.cfg.Guard == nil {
		return nil, true
	}
	return d.cfg.Guard()
}

// load reads everything at one revision.
func (d *Decider) load(ctx context.Context) (*world, *State, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	resp, err := d.cfg.Client.Txn(ctx).Then(
		clientv3.OpGet(store.NodesPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(store.ObservationsPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(store.OverridesPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(store.RoutingPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(store.EndpointVerdictsPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(store.SiteVerdictsPrefix, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("decide: load state: %w", err)
	}
	w := &world{live: map[string]bool{}, obs: d.cfg.Engine.NewTable(), overrides: map[string]Override{}}
	r := resp.Responses
	for _, kv := range r[0].GetResponseRange().Kvs {
		w.live[probe.NodeName(string(kv.Key))] = true
	}
	for _, kv := range r[1].GetResponseRange().Kvs {
		setObs(w, string(kv.Key), kv.Value)
	}
	for _, kv := range r[2].GetResponseRange().Kvs {
		setOverride(w, string(kv.Key), kv.Value)
	}
	prev := &State{Endpoints: map[string]EndpointVerdict{}, Sites: map[string]SiteVerdict{}, Routes: map[string]*routing.Route{}}
	for _, kv := range r[3].GetResponseRange().Kvs {
		var rt routing.Route
		if json.Unmarshal(kv.Value, &rt) == nil && rt.Service != "" {
			prev.Routes[rt.Service] = &rt
		}
	}
	for _, kv := range r[4].GetResponseRange().Kvs {
		var v EndpointVerdict
		if json.Unmarshal(kv.Value, &v) == nil && v.ID != "" {
			prev.Endpoints[v.ID] = v
		}
	}
	for _, kv := range r[5].GetResponseRange().Kvs {
		var v SiteVerdict
		if json.Unmarshal(kv.Value, &v) == nil && v.Site != "" {
			prev.Sites[v.Site] = v
			if v.Evacuated {
				prev.Evacuated = append(prev.Evacuated, v.Site)
			}
		}
	}
	return w, prev, resp.Header.Revision, nil
}

func applyNodes(w *world, evs []*clientv3.Event) {
	for _, ev := range evs {
		n := probe.NodeName(string(ev.Kv.Key))
		if ev.Type == clientv3.EventTypePut {
			w.live[n] = true
		} else {
			delete(w.live, n)
		}
	}
}

func applyObs(w *world, evs []*clientv3.Event) {
	for _, ev := range evs {
		if ev.Type == clientv3.EventTypePut {
			setObs(w, string(ev.Kv.Key), ev.Kv.Value)
			continue
		}
		observer, id, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), store.ObservationsPrefix), "/")
		if ok {
			w.obs.Delete(observer, id)
		}
	}
}

func setObs(w *world, key string, val []byte) {
	observer, id, ok := strings.Cut(strings.TrimPrefix(key, store.ObservationsPrefix), "/")
	if !ok {
		return
	}
	var o probe.Observation
	if json.Unmarshal(val, &o) != nil {
		return
	}
	w.obs.Set(observer, id, o.Up)
}

func applyOverrides(w *world, evs []*clientv3.Event) {
	for _, ev := range evs {
		if ev.Type == clientv3.EventTypePut {
			setOverride(w, string(ev.Kv.Key), ev.Kv.Value)
		} else {
			delete(w.overrides, strings.TrimPrefix(string(ev.Kv.Key), store.OverridesPrefix))
		}
	}
}

func setOverride(w *world, key string, val []byte) {
	var o Override
	if json.Unmarshal(val, &o) != nil {
		return
	}
	w.overrides[strings.TrimPrefix(key, store.OverridesPrefix)] = o
}

// step decides once and writes the differences.
func (d *Decider) step(ctx context.Context, w *world, prev **State, quorum *bool) error {
	in := Input{Now: d.cfg.Now(), Live: w.live, Table: w.obs, Quorum: *quorum}
	for _, o := range w.overrides {
		in.Overrides = append(in.Overrides, o)
	}
	out := d.cfg.Engine.Step(*prev, in)
	ops := d.diff(*prev, out)
	if len(ops) == 0 {
		*prev = out.State
		d.setState(out.State)
		return nil
	}
	if err := d.write(ctx, ops); err != nil {
		if errors.Is(err, ErrNotLeader) || ctx.Err() != nil {
			return err
		}
		// Keep the previous state: the next step recomputes and retries.
		d.log.Warn("write decisions", "err", err)
		*quorum = false
		return nil
	}
	*quorum = true
	*prev = out.State
	d.setState(out.State)
	for _, ev := range out.Events {
		if ev.Kind == EventRoute || ev.Kind == EventSite || ev.Kind == EventAlarm {
			d.log.Info("decision", "kind", ev.Kind, "subject", ev.Subject, "to", ev.To, "reason", ev.Reason)
		}
	}
	return nil
}

func (d *Decider) setState(s *State) {
	d.mu.Lock()
	d.state = s
	d.mu.Unlock()
}

// diff lists the writes that take the store from prev to out: routes and
// their history first, then verdicts and the remaining history.
func (d *Decider) diff(prev *State, out Output) []clientv3.Op {
	var ops []clientv3.Op
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			d.log.Error("marshal", "key", key, "err", err)
			return
		}
		ops = append(ops, clientv3.OpPut(key, string(b)))
	}
	next := out.State
	for name, r := range next.Routes {
		if prev.Routes[name] != r {
			put(store.RoutingPrefix+name, r)
		}
	}
	for _, ev := range out.Events {
		if ev.Kind == EventRoute {
			put(d.historyKey(ev.Time), ev)
		}
	}
	for id, v := range next.Endpoints {
		if pv, ok := prev.Endpoints[id]; !ok || pv.State != v.State {
			put(store.EndpointVerdictsPrefix+id, v)
		}
	}
	for s, v := range next.Sites {
		if pv, ok := prev.Sites[s]; !ok || pv.State != v.State || pv.Evacuated != v.Evacuated {
			put(store.SiteVerdictsPrefix+s, v)
		}
	}
	for _, ev := range out.Events {
		if ev.Kind != EventRoute {
			put(d.historyKey(ev.Time), ev)
		}
	}
	return ops
}

func (d *Decider) historyKey(t time.Time) string {
	d.seq++
	return fmt.Sprintf("%s%020d-%06d", store.HistoryPrefix, t.UnixNano(), d.seq%1000000)
}

// write commits ops in guarded transactions of at most maxTxnOps.
func (d *Decider) write(ctx context.Context, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		cmps, ok := d.guard()
		if !ok {
			return ErrNotLeader
		}
		tctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		resp, err := d.cfg.Client.Txn(tctx).If(cmps...).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("decide: write: %w", err)
		}
		if !resp.Succeeded {
			return ErrNotLeader
		}
		ops = ops[n:]
	}
	return nil
}
