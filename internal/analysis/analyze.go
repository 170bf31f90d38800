package analysis

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/firebreak/firebreak/internal/topology"
)

// Options tune an analysis. The zero value is the default.
type Options struct {
	// Workers is how many scenarios are evaluated in parallel (default:
	// GOMAXPROCS).
	Workers int
	// NoPairs skips the site-pair scenarios (default: evaluated).
	NoPairs bool
}

// Analyze evaluates every single-site, site-pair, rack and compromised-site
// scenario of t and derives the findings. t must be a valid topology (as
// returned by topology.Parse); it is only read. Analyze stops early and
// returns ctx.Err() when ctx is cancelled.
func Analyze(ctx context.Context, t *topology.Topology, opts Options) (*Result, error) {
	if t == nil {
		return nil, fmt.Errorf("analyze: nil topology")
	}
	g := compile(t)
	specs := g.specs(opts)
	res := &Result{
		Schema:     SchemaVersion,
		Source:     t.Source,
		Name:       t.Name,
		Sites:      append([]string{}, g.sites...),
		Services:   g.nsvc,
		Datastores: g.nds,
		Nodes:      len(t.Nodes),
		Scenarios:  make([]Scenario, len(specs)),
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > len(specs) {
		workers = len(specs)
	}
	per := make([][]Finding, len(specs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := newScratch(g)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(specs) {
					return
				}
				g.eval(&specs[i], sc)
				res.Scenarios[i] = g.scenario(&specs[i], sc)
				per[i] = g.scenarioFindings(&res.Scenarios[i])
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	res.Findings = g.findings(res, per)
	sort.Slice(res.Findings, func(i, j int) bool {
		a, b := &res.Findings[i], &res.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return a.ID < b.ID
	})
	res.Counts = map[string]int{}
	for _, n := range severityNames {
		res.Counts[n] = 0
	}
	for _, f := range res.Findings {
		res.Counts[f.Severity.String()]++
	}
	return res, nil
}

// specs lists the scenarios in their reporting order.
func (g *graph) specs(opts Options) []spec {
	var out []spec
	for i, s := range g.sites {
		out = append(out, spec{
			id: KindSite + ":" + s, kind: KindSite, lost: []string{s},
			sites: []int32{int32(i)}, rack: -1, compromised: -1, where: s,
		})
	}
	if !opts.NoPairs {
		for i := range g.sites {
			for j := i + 1; j < len(g.sites); j++ {
				a, b := g.sites[i], g.sites[j]
				out = append(out, spec{
					id: KindSitePair + ":" + a + "+" + b, kind: KindSitePair, lost: []string{a, b},
					sites: []int32{int32(i), int32(j)}, rack: -1, compromised: -1, where: a + " and " + b,
				})
			}
		}
	}
	for i, r := range g.racks {
		site := g.sites[r.site]
		out = append(out, spec{
			id: KindRack + ":" + site + "/" + r.name, kind: KindRack, lost: []string{site + "/" + r.name},
			rack: i, compromised: -1, where: "rack " + r.name + " of " + site,
		})
	}
	for i, s := range g.t.Sites {
		if s.Role != topology.RoleDatacenter {
			continue
		}
		has := false
		for _, p := range g.dsPrimary {
			if p == int32(i) {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		out = append(out, spec{
			id: KindCompromised + ":" + s.Name, kind: KindCompromised, lost: []string{s.Name},
			rack: -1, compromised: int32(i), where: "compromised site " + s.Name,
		})
	}
	return out
}

// scenario turns the evaluated state in sc into a Scenario.
func (g *graph) scenario(sp *spec, sc *scratch) Scenario {
	s := Scenario{ID: sp.id, Kind: sp.kind, Lost: sp.lost, Total: g.nsvc}
	// One allocation for the impacts and one for all their chains.
	links := 0
	for v := 0; v < g.nsvc; v++ {
		p := g.pos[v]
		switch sc.status[p] {
		case stDown:
			s.Down++
		case stDegraded:
			s.Degraded++
		default:
			continue
		}
		links += int(sc.depth[p])
	}
	if n := s.Down + s.Degraded; n > 0 {
		s.Services = make([]ServiceImpact, 0, n)
		arena := make([]Link, links)
		for v := 0; v < g.nsvc; v++ {
			p := g.pos[v]
			st := sc.status[p]
			if st == stUp {
				continue
			}
			d := int(sc.depth[p])
			ch := g.chain(sp, sc, p, arena[:0:d])
			arena = arena[d:]
			svc := g.t.Services[v]
			s.Services = append(s.Services, ServiceImpact{
				Service: svc.Name, Kind: svc.Kind, Tier: svc.Tier, Status: statusOf[st],
				Chain: ch, Capacity: int(sc.remCap[p]), Peak: int(g.peak[v]),
			})
		}
	}
	s.ControlPlane.Nodes = len(g.nodeSite)
	for _, ns := range g.nodeSite {
		lost := sc.lostSite[ns] || ns == sp.compromised
		if !lost {
			s.ControlPlane.Surviving++
		}
	}
	s.ControlPlane.Quorum = s.ControlPlane.Nodes > 0 && s.ControlPlane.Surviving*2 > s.ControlPlane.Nodes
	for i := 0; i < g.nds; i++ {
		p := g.pos[g.nsvc+i]
		st := sc.status[p]
		if st == stUp {
			continue
		}
		di := DatastoreImpact{Datastore: g.t.Datastores[i].Name, Status: statusOf[st], Reason: g.rootReason(sp, sc, p)}
		if st == stFailover {
			di.Promote = g.sites[sc.promote[i]]
			di.DataLoss = !sc.promSync[i]
			if !s.ControlPlane.Quorum {
				di.Reason += "; firebreak has no quorum, so the promotion is manual"
			}
		}
		if sp.compromised >= 0 {
			di.DataLoss = !hasImmutable(g.t.Datastores[i])
		}
		s.Datastores = append(s.Datastores, di)
	}
	if len(g.t.Customers) > 0 && len(s.Services) > 0 {
		s.Customers = g.customers(sc)
	}
	return s
}

func (g *graph) customers(sc *scratch) []CustomerImpact {
	var out []CustomerImpact
	for _, c := range g.t.Customers {
		ci := CustomerImpact{Class: c.Name, Status: Up, Count: c.Count}
		for _, name := range c.Services {
			v := g.index(name)
			if v < 0 {
				continue
			}
			st := sc.status[g.pos[v]]
			if st == stUp || st == stFailover {
				continue
			}
			ci.Services = append(ci.Services, name)
			if st == stDown {
				ci.Status = Down
			} else if ci.Status == Up {
				ci.Status = Degraded
			}
		}
		if ci.Status != Up {
			out = append(out, ci)
		}
	}
	return out
}

// index returns the node of a service or datastore name, or -1.
func (g *graph) index(name string) int32 {
	if v, ok := g.nodeOf[name]; ok {
		return v
	}
	return -1
}

func hasImmutable(d *topology.Datastore) bool {
	for _, b := range d.Backups {
		if b.Immutable {
			return true
		}
	}
	return false
}
