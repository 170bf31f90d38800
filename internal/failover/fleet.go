package failover

import (
	"context"
	"sort"
	"sync"

	"github.com/firebreak/firebreak/internal/topology"
)

// Fleet is one Manager per datastore of a topology that has a driver for
// its engine and declares addresses: what a node runs for readiness, lag
// history and fence-on-sight, and what the leader calls Failover on.
type Fleet struct {
	managers map[string]*Manager
	skipped  map[string]string
}

// NewFleet builds the managers. base supplies everything but Datastore and
// Engine; engines maps a topology engine name (postgres, redis) to its
// driver. Datastores without a driver or without addresses are skipped,
// with the reason in Skipped.
func NewFleet(topo *topology.Topology, base Config, engines map[string]Engine) (*Fleet, error) {
	f := &Fleet{managers: map[string]*Manager{}, skipped: map[string]string{}}
	for _, ds := range topo.Datastores {
		eng := engines[ds.Engine]
		switch {
		case eng == nil:
			f.skipped[ds.Name] = "no failover driver for engine " + ds.Engine
			continue
		case ds.Address == "" || ds.Port == 0:
			f.skipped[ds.Name] = "primary has no address:port in the topology"
			continue
		}
		missing := false
		for _, r := range ds.Replicas {
			missing = missing || r.Address == "" || r.Port == 0
		}
		if missing {
			f.skipped[ds.Name] = "a replica has no address:port in the topology"
			continue
		}
		cfg := base
		cfg.Datastore, cfg.Engine = ds, eng
		m, err := New(cfg)
		if err != nil {
			return nil, err
		}
		f.managers[ds.Name] = m
	}
	return f, nil
}

// Manager returns the manager of a datastore, or nil.
func (f *Fleet) Manager(datastore string) *Manager { return f.managers[datastore] }

// Skipped maps each datastore without a manager to the reason.
func (f *Fleet) Skipped() map[string]string { return f.skipped }

// Run runs every manager until ctx ends and returns ctx's error.
func (f *Fleet) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, m := range f.managers {
		wg.Add(1)
		go func(m *Manager) {
			defer wg.Done()
			_ = m.Run(ctx)
		}(m)
	}
	wg.Wait()
	return ctx.Err()
}

// Readiness returns every manager's latest readiness, sorted by datastore.
func (f *Fleet) Readiness() []Readiness {
	out := make([]Readiness, 0, len(f.managers))
	for name, m := range f.managers {
		r := m.Readiness()
		if r.Datastore == "" {
			r.Datastore = name // no round yet
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Datastore < out[j].Datastore })
	return out
}
