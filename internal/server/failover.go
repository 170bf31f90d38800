package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/pg"
	"github.com/firebreak/firebreak/internal/failover/redisfo"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// DefaultFailoverEngines returns the failover drivers a node uses when
// Options.FailoverEngines is nil: PostgreSQL (superuser from PGUSER and
// PGPASSWORD, database PGDATABASE, defaults postgres) and Redis (AUTH from
// REDISCLI_USER and REDISCLI_AUTH), keyed by topology engine name.
func DefaultFailoverEngines() map[string]failover.Engine {
	p := pg.New(pg.Options{User: os.Getenv("PGUSER"), Password: os.Getenv("PGPASSWORD"), Database: os.Getenv("PGDATABASE")})
	r := redisfo.New(redisfo.Options{Username: os.Getenv("REDISCLI_USER"), Password: os.Getenv("REDISCLI_AUTH")})
	return map[string]failover.Engine{"postgres": p, "postgresql": p, "redis": r}
}

// Failover is the node.Component that runs the datastore failover managers
// (failover.Fleet) for the node's current topology on every node — so each
// node keeps readiness and a lag history, and fences on sight an old
// primary that comes back — and, while this node leads, fails a datastore
// over when the decider's verdict says its primary's site is down.
//
// The automatic failover follows the failover rule (internal/failover):
// the old primary must be fenced (directly when it answers, else by the
// datastore's STONITH Fencer) and a replica's lag must be within the RPO;
// the leader never applies a human override. When the rule refuses, the
// refusal is audited and retried after Retry, then after twice as long
// each time (at most 5 minutes) while the site stays down;
// people can then use `firebreak failover` with overrides.
type Failover struct {
	// Engines maps topology engine names to drivers (default
	// DefaultFailoverEngines()). Datastores of other engines are manual.
	Engines map[string]failover.Engine
	// Fencers maps datastore names to their STONITH fencer (optional).
	Fencers map[string]failover.Fencer
	// Interval between readiness rounds (default 1s, the manager's).
	Interval time.Duration
	// Check is how often the leader re-reads site verdicts without a
	// store event (default 1s).
	Check time.Duration
	// Retry is the wait before the first retry of a refused automatic
	// failover of one datastore; it doubles per refusal up to 5 minutes
	// (default 10s).
	Retry time.Duration
	// Logger defaults to the node's.
	Logger *slog.Logger

	mu    sync.Mutex
	topo  *topology.Topology
	fleet *failover.Fleet
}

// Name implements node.Component.
func (*Failover) Name() string { return "failover" }

// Run implements node.Component.
func (f *Failover) Run(ctx context.Context, n *node.Node) error {
	log := logger(f.Logger, n)
	engines := f.Engines
	if engines == nil {
		engines = DefaultFailoverEngines()
	}
	err := followTopology(ctx, n, func(ctx context.Context, t *topology.Topology) error {
		base := failover.Config{Client: n.Client(), SiteDown: failover.StoreVerdict(n.Client()),
			Fencer: f.fencer(t), Who: n.Name(), Interval: f.Interval, Logger: log}
		fleet, err := failover.NewFleet(t, base, engines)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.topo, f.fleet = t, fleet
		f.mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = fleet.Run(ctx)
		}()
		err = n.WhileLeader(ctx, func(ctx context.Context) error {
			return f.lead(ctx, n, t, fleet, log)
		})
		wg.Wait()
		return quiet(ctx, err)
	})
	return quiet(ctx, err)
}

// fencer dispatches to the fencer of the datastore a member belongs to.
func (f *Failover) fencer(t *topology.Topology) failover.Fencer {
	if len(f.Fencers) == 0 {
		return nil
	}
	by := memberFencers{}
	for _, ds := range t.Datastores {
		fe := f.Fencers[ds.Name]
		if fe == nil {
			continue
		}
		for _, m := range failover.Members(ds) {
			by[m.Addr()] = fe
		}
	}
	return by
}

// memberFencers maps a member's host:port to its datastore's fencer.
type memberFencers map[string]failover.Fencer

func (mf memberFencers) get(m failover.Member) (failover.Fencer, error) {
	if fe := mf[m.Addr()]; fe != nil {
		return fe, nil
	}
	return nil, fmt.Errorf("no STONITH fencer configured for %s", m)
}

func (mf memberFencers) Fence(ctx context.Context, m failover.Member) error {
	fe, err := mf.get(m)
	if err != nil {
		return err
	}
	return fe.Fence(ctx, m)
}

func (mf memberFencers) Check(ctx context.Context, m failover.Member) error {
	fe, err := mf.get(m)
	if err != nil {
		return err
	}
	return fe.Check(ctx, m)
}

// lead watches site verdicts while this node leads and starts a failover
// of each managed datastore whose primary's site is down.
func (f *Failover) lead(ctx context.Context, n *node.Node, t *topology.Topology, fleet *failover.Fleet, log *slog.Logger) error {
	check, retry := f.Check, f.Retry
	if check <= 0 {
		check = time.Second
	}
	if retry <= 0 {
		retry = 10 * time.Second
	}
	var names []string
	for _, ds := range t.Datastores {
		if fleet.Manager(ds.Name) != nil {
			names = append(names, ds.Name)
		}
	}
	if len(names) == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	log.Info("leader: automatic failover armed", "node", n.Name(), "datastores", strings.Join(names, ","))
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watch := n.Client().Watch(wctx, store.SiteVerdictsPrefix, clientv3.WithPrefix())
	tick := time.NewTicker(check)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	busy := map[string]bool{}
	// next is when a datastore may be tried again: after a refusal the
	// wait doubles from retry up to 5 minutes (each refusal is audited),
	// and starts over when the primary's site is up again.
	next := map[string]time.Time{}
	wait := map[string]time.Duration{}
	for {
		down, err := f.downSites(ctx, n)
		if err != nil {
			log.Debug("failover: read verdicts", "err", err)
		}
		for _, name := range names {
			m := fleet.Manager(name)
			ep, _, err := failover.ReadEpoch(ctx, n.Client(), name)
			if err != nil {
				continue
			}
			primarySite := t.Datastore(name).Primary
			if ep.Epoch > 0 {
				primarySite = ep.Primary.Site
			}
			mu.Lock()
			if !down[primarySite] {
				delete(next, name)
				delete(wait, name)
			}
			skip := !down[primarySite] || busy[name] || time.Now().Before(next[name]) || ep.State == failover.EpochPromoting
			if !skip {
				busy[name] = true
			}
			mu.Unlock()
			if skip {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				expect := ep.Epoch
				res, err := m.Failover(ctx, failover.Request{Who: n.Name(),
					Reason: "automatic: site " + primarySite + " is down by verdict", ExpectEpoch: &expect})
				mu.Lock()
				busy[name] = false
				w := min(max(2*wait[name], retry), 5*time.Minute)
				if err != nil {
					wait[name], next[name] = w, time.Now().Add(w)
				}
				mu.Unlock()
				if err != nil {
					log.Warn("automatic failover refused", "datastore", name, "site", primarySite, "err", err, "retryIn", w)
					return
				}
				log.Info("automatic failover done", "datastore", name, "epoch", res.Epoch.Epoch,
					"primary", res.Epoch.Primary.String(), "fencedBy", res.FencedBy, "took", res.Total)
			}()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-watch:
			if !ok {
				watch = nil
			}
		case <-tick.C:
		}
	}
}

// downSites reads the site verdicts in a transaction guarded by this
// node's leadership: a deposed leader reads nothing and fails nothing over.
func (f *Failover) downSites(ctx context.Context, n *node.Node) (map[string]bool, error) {
	guard, ok := n.LeaderGuard()
	if !ok {
		return nil, fmt.Errorf("not leader")
	}
	resp, err := n.Client().Txn(ctx).If(guard...).Then(clientv3.OpGet(store.SiteVerdictsPrefix, clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("leadership lost")
	}
	down := map[string]bool{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var v struct {
			Site  string `json:"site"`
			State string `json:"state"`
		}
		if json.Unmarshal(kv.Value, &v) == nil && v.State == "down" {
			down[strings.TrimPrefix(string(kv.Key), store.SiteVerdictsPrefix)] = true
		}
	}
	return down, nil
}

// Readiness returns this node's failover readiness of every datastore of
// its current topology, sorted by name: the managers' latest rounds, and
// "manual" for datastores without a driver or addresses. It is empty
// before the component runs.
func (f *Failover) Readiness() []view.DatastoreReadiness {
	f.mu.Lock()
	t, fleet := f.topo, f.fleet
	f.mu.Unlock()
	if t == nil || fleet == nil {
		return nil
	}
	got := map[string]failover.Readiness{}
	for _, r := range fleet.Readiness() {
		got[r.Datastore] = r
	}
	skipped := fleet.Skipped()
	out := make([]view.DatastoreReadiness, 0, len(t.Datastores))
	for _, ds := range t.Datastores {
		if r, ok := got[ds.Name]; ok {
			out = append(out, ReadinessView(ds, r))
			continue
		}
		out = append(out, manualView(ds, skipped[ds.Name]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Datastore < out[j].Datastore })
	return out
}

// ReadinessView turns a manager's readiness into the API's view.
func ReadinessView(ds *topology.Datastore, r failover.Readiness) view.DatastoreReadiness {
	v := view.DatastoreReadiness{Datastore: ds.Name, Engine: ds.Engine, Mode: view.FailoverAutomatic,
		PrimarySite: ds.Primary, RPO: ds.RPO.String()}
	if ds.Address != "" {
		v.Primary = failover.Members(ds)[0].Addr()
	}
	if r.At.IsZero() {
		v.Summary = ds.Name + ": no readiness round yet"
		return v
	}
	v.Epoch, v.PrimarySite, v.Primary, v.PrimaryUp, v.OK, v.At = r.Epoch, r.Primary.Site, r.Primary.Addr(), r.PrimaryUp, r.Ready, r.At
	for _, c := range r.Checks {
		v.Checks = append(v.Checks, view.DatastoreCheck{Name: c.Name, OK: c.OK, Detail: c.Detail})
		switch c.Name {
		case failover.CheckReplicaOutsideSite:
			v.ReplicaOutsideSite, v.ReplicaOutsideDetail = c.OK, c.Detail
		case failover.CheckLagWithinRPO:
			v.LagWithinRPO = c.OK
		case failover.CheckCapacity:
			v.CapacityOK = c.OK
		case failover.CheckFencePath:
			v.FencePathOK = c.OK
		}
	}
	var best time.Duration
	for _, c := range r.Replicas {
		if c.Member.Site == r.Primary.Site || !c.Reachable || c.State.Role != failover.RoleReplica || !c.LagKnown {
			continue
		}
		if lag := c.LagTime.Round(time.Millisecond); !v.LagKnown || lag < best {
			best, v.LagKnown, v.LagNow, v.LagBytes = lag, true, lag.String(), c.LagBytes
		}
	}
	v.Summary = r.Summary()
	return v
}

// manualView describes a datastore firebreak does not fail over itself.
func manualView(ds *topology.Datastore, why string) view.DatastoreReadiness {
	if why == "" {
		why = "not managed"
	}
	v := view.DatastoreReadiness{Datastore: ds.Name, Engine: ds.Engine, Mode: view.FailoverManual,
		PrimarySite: ds.Primary, RPO: ds.RPO.String()}
	if ds.Address != "" && ds.Port != 0 {
		v.Primary = failover.Members(ds)[0].Addr()
	}
	var outside []string
	for _, r := range ds.Replicas {
		if r.Site != ds.Primary {
			outside = append(outside, r.Site)
		}
	}
	v.ReplicaOutsideSite = len(outside) > 0
	if v.ReplicaOutsideSite {
		v.ReplicaOutsideDetail = "declared in " + strings.Join(outside, ", ") + " (not probed)"
	} else {
		v.ReplicaOutsideDetail = "no replica outside " + ds.Primary + " in the topology"
	}
	v.Summary = ds.Name + ": manual failover (" + why + ")"
	return v
}

var _ node.Component = (*Failover)(nil)
