package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// Config configures a Prober. Node, Topology, Client and Lease are required.
type Config struct {
	// Node is this observer's node name (as in the topology).
	Node string
	// Topology says what to check.
	Topology *topology.Topology
	// Client is the store client.
	Client *clientv3.Client
	// Lease is the node's lease; every observation is written under it, so
	// a dead observer's opinions vanish with it.
	Lease clientv3.LeaseID
	// OtherSites is how many sites besides an endpoint's own observe it
	// (default DefaultOtherSites); it must match the decider's.
	OtherSites int
	// Workers bounds concurrent checks (default DefaultWorkers).
	Workers int
	// Dial replaces the dialer of network checks (default net.Dialer);
	// tests use it to cut one observer off.
	Dial DialFunc
	// WriteTimeout bounds one store write (default 2s).
	WriteTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives the prober's metrics: check latency
	// by check type and result (firebreak_probe_check_duration_seconds)
	// and observed transitions (firebreak_probe_transitions_total).
	// Probers restarted with the same Registerer share the series.
	Registerer prometheus.Registerer
}

// Prober checks the endpoints assigned to one node and writes its
// observations' transitions to the store.
type Prober struct {
	cfg      Config
	log      *slog.Logger
	checkers *Checkers
	sched    *Scheduler
	m        *metrics
	eps      map[string]*topology.Endpoint
	svc      map[string]*topology.Service

	mu      sync.Mutex
	pending map[string]*Observation // opinions to write (newest per endpoint)
	deletes map[string]bool         // observations to delete
	kick    chan struct{}           // wakes the writer
}

// NewProber validates cfg and returns a prober; Run starts it.
func NewProber(cfg Config) (*Prober, error) {
	switch {
	case cfg.Node == "":
		return nil, errors.New("probe: empty node name")
	case cfg.Topology == nil:
		return nil, errors.New("probe: nil topology")
	case cfg.Client == nil:
		return nil, errors.New("probe: nil store client")
	}
	if cfg.Topology.Node(cfg.Node) == nil {
		return nil, fmt.Errorf("probe: node %q is not in the topology", cfg.Node)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Prober{cfg: cfg, log: cfg.Logger.With("component", "probe", "node", cfg.Node),
		checkers: NewCheckers(cfg.Dial), eps: map[string]*topology.Endpoint{}, svc: map[string]*topology.Service{},
		pending: map[string]*Observation{}, deletes: map[string]bool{}, kick: make(chan struct{}, 1)}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("probe: metrics: %w", err)
	}
	p.m = m
	p.sched = NewScheduler(cfg.Workers, p.transition)
	if m != nil {
		p.sched.onCheck = func(t *Target, d time.Duration, err error) { m.check(t.Type, d, err) }
	}
	for _, s := range cfg.Topology.Services {
		for _, ep := range s.Endpoints {
			p.eps[ep.ID()] = ep
			p.svc[ep.ID()] = s
		}
	}
	return p, nil
}

// Scheduler exposes the prober's scheduler (for stats).
func (p *Prober) Scheduler() *Scheduler { return p.sched }

// ObservationKey is the store key of observer's opinion of endpoint id.
func ObservationKey(observer, id string) string {
	return store.ObservationsPrefix + observer + "/" + id
}

// NodeName extracts the node name from a key under store.NodesPrefix.
func NodeName(key string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(key, store.NodesPrefix), "/")
	return name
}

// Run watches the live node set, keeps the assignment current, checks and
// writes transitions until ctx is done. It returns ctx.Err() on shutdown or
// an error when the store cannot be read at start.
func (p *Prober) Run(ctx context.Context) error {
	defer p.checkers.Close()
	resp, err := p.cfg.Client.Get(ctx, store.NodesPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("probe: read nodes: %w", err)
	}
	live := map[string]bool{}
	for _, kv := range resp.Kvs {
		live[NodeName(string(kv.Key))] = true
	}
	live[p.cfg.Node] = true
	p.reassign(live)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = p.sched.Run(ctx)
	}()

	wch := p.cfg.Client.Watch(ctx, store.NodesPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithKeysOnly())
	retry := time.NewTicker(500 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-wch:
			if !ok {
				return ctx.Err()
			}
			if err := wr.Err(); err != nil {
				p.log.Warn("node watch", "err", err)
				continue
			}
			for _, ev := range wr.Events {
				n := NodeName(string(ev.Kv.Key))
				live[n] = ev.Type == clientv3.EventTypePut || n == p.cfg.Node
			}
			p.reassign(live)
		case <-p.kick:
			p.flush(ctx)
		case <-retry.C:
			p.flush(ctx)
		}
	}
}

func (p *Prober) reassign(live map[string]bool) {
	a := Assign(p.cfg.Topology, live, p.cfg.OtherSites)
	var ts []Target
	for _, id := range a.For(p.cfg.Node) {
		ep, svc := p.eps[id], p.svc[id]
		c, err := p.checkers.New(svc.Check, ep)
		if err != nil {
			p.log.Error("cannot check endpoint", "endpoint", id, "err", err)
			continue
		}
		ts = append(ts, Target{ID: id, Interval: svc.Check.Interval, Timeout: svc.Check.Timeout,
			Rise: svc.Check.Rise, Fall: svc.Check.Fall, Checker: c, Type: checkType(svc.Check.Type)})
	}
	removed := p.sched.Set(ts)
	if len(removed) > 0 {
		p.mu.Lock()
		for _, id := range removed {
			delete(p.pending, id)
			p.deletes[id] = true
		}
		p.mu.Unlock()
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	p.log.Debug("assignment", "endpoints", len(ts), "removed", len(removed))
}

// transition runs on a scheduler worker: queue the new opinion for the
// writer and return at once, so checks go on even while the store is slow
// or unreachable. Only the newest opinion per endpoint is kept.
func (p *Prober) transition(tr Transition) {
	if svc := p.svc[tr.ID]; svc != nil {
		p.m.transition(checkType(svc.Check.Type), tr.Up)
	}
	o := &Observation{Observer: p.cfg.Node, Endpoint: tr.ID, Up: tr.Up, Since: tr.At}
	if tr.Err != nil {
		o.Detail = tr.Err.Error()
	}
	p.mu.Lock()
	delete(p.deletes, tr.ID)
	p.pending[tr.ID] = o
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// maxOps bounds one write transaction (etcd's default limit is 128).
const maxOps = 100

// flush writes queued opinions and deletes observations of endpoints no
// longer assigned, in transactions of up to maxOps; what fails is queued
// again unless something newer came meanwhile.
func (p *Prober) flush(ctx context.Context) {
	p.mu.Lock()
	pend, dels := p.pending, p.deletes
	p.pending, p.deletes = map[string]*Observation{}, map[string]bool{}
	p.mu.Unlock()
	if len(pend) == 0 && len(dels) == 0 {
		return
	}
	type op struct {
		id  string
		obs *Observation // nil: delete
	}
	ops := make([]op, 0, len(pend)+len(dels))
	for id, o := range pend {
		ops = append(ops, op{id, o})
	}
	for id := range dels {
		ops = append(ops, op{id: id})
	}
	for len(ops) > 0 {
		batch := ops[:min(len(ops), maxOps)]
		ops = ops[len(batch):]
		txn := make([]clientv3.Op, 0, len(batch))
		for _, o := range batch {
			key := ObservationKey(p.cfg.Node, o.id)
			if o.obs == nil {
				txn = append(txn, clientv3.OpDelete(key))
				continue
			}
			b, err := json.Marshal(o.obs)
			if err != nil {
				continue
			}
			txn = append(txn, clientv3.OpPut(key, string(b), clientv3.WithLease(p.cfg.Lease)))
		}
		wctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
		_, err := p.cfg.Client.Txn(wctx).Then(txn...).Commit()
		cancel()
		if err == nil {
			continue
		}
		if ctx.Err() == nil {
			p.log.Warn("write observations; will retry", "count", len(batch)+len(ops), "err", err)
		}
		// Requeue this batch and the rest, unless newer news arrived.
		p.mu.Lock()
		for _, o := range append(batch, ops...) {
			_, newer := p.pending[o.id]
			_, newerDel := p.deletes[o.id]
			if newer || newerDel {
				continue
			}
			if o.obs == nil {
				p.deletes[o.id] = true
			} else {
				p.pending[o.id] = o.obs
			}
		}
		p.mu.Unlock()
		return
	}
}

// checkType is the metrics label of a check type (default tcp).
func checkType(t string) string {
	if t == "" {
		return topology.CheckTCP
	}
	return t
}
