package decide

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// randomTopo builds 3-5 datacenter sites (one node each), sometimes a
// witness, and 1-4 services with endpoints in random subsets of sites.
func randomTopo(r *rand.Rand, policies []string) *topology.Topology {
	t := &topology.Topology{Decide: topology.Decide{MaxAutoEvacuatedSites: r.IntN(3), HoldDown: time.Duration(r.IntN(3)) * 5 * time.Second}}
	nsites := 3 + r.IntN(3)
	for i := range nsites {
		s := fmt.Sprintf("s%d", i)
		t.Sites = append(t.Sites, &topology.Site{Name: s, Role: topology.RoleDatacenter})
		t.Nodes = append(t.Nodes, &topology.Node{Name: "n" + s, Site: s})
	}
	if r.IntN(2) == 0 {
		t.Sites = append(t.Sites, &topology.Site{Name: "w", Role: topology.RoleWitness})
		t.Nodes = append(t.Nodes, &topology.Node{Name: "nw", Site: "w"})
	}
	for i := range 1 + r.IntN(4) {
		svc := &topology.Service{Name: fmt.Sprintf("svc%d", i), Policy: policies[r.IntN(len(policies))]}
		for j := range nsites {
			if len(svc.Endpoints) > 0 && r.IntN(3) == 0 {
				continue
			}
			for k := range 1 + r.IntN(2) {
				svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: svc.Name, Site: fmt.Sprintf("s%d", j),
					Address: fmt.Sprintf("10.%d.%d.%d", i, j, k), Port: 80, Weight: 1, Capacity: 1})
			}
		}
		t.Services = append(t.Services, svc)
	}
	t.Index()
	return t
}

// randomInput: random live nodes, random dead sites, some observers
// partitioned (see everything outside their site down), others noisy.
func randomInput(r *rand.Rand, t *topology.Topology, now time.Time) Input {
	in := Input{Now: now, Live: map[string]bool{}, Observations: map[string]map[string]bool{}, Quorum: r.IntN(10) > 0}
	dead := map[string]bool{}
	for _, s := range t.Sites {
		if r.IntN(4) == 0 {
			dead[s.Name] = true
		}
	}
	for _, n := range t.Nodes {
		if !dead[n.Site] || r.IntN(2) == 0 {
			in.Live[n.Name] = r.IntN(8) > 0
		}
	}
	for _, n := range t.Nodes {
		mode := r.IntN(6) // 0: partitioned, 1: random noise, else truth
		m := map[string]bool{}
		for _, ep := range t.Endpoints() {
			if r.IntN(10) == 0 {
				continue // no opinion yet
			}
			switch mode {
			case 0:
				m[ep.ID()] = ep.Site == n.Site && !dead[ep.Site]
			case 1:
				m[ep.ID()] = r.IntN(2) == 0
			default:
				m[ep.ID()] = !dead[ep.Site]
			}
		}
		in.Observations[n.Name] = m
	}
	return in
}

// TestPropertyNeverZeroNeverOverEvacuate: random observer failures,
// partitions, dead sites and node losses never route a service to zero
// endpoints and never evacuate more sites than the limit.
func TestPropertyNeverZeroNeverOverEvacuate(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 42))
		strict := seed%2 == 0 // no failover policy: excluded sites are evacuations
		policies := []string{topology.PolicyActiveActive, topology.PolicyWeighted, topology.PolicyNearest}
		if !strict {
			policies = append(policies, topology.PolicyFailover)
		}
		topo := randomTopo(r, policies)
		e := NewEngine(topo, 0)
		var st *State
		now := t0
		for stepN := range 60 {
			now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
			in := randomInput(r, topo, now)
			st = e.Step(st, in).State
			limit := topo.Decide.MaxAutoEvacuatedSites
			if len(st.Evacuated) > limit {
				t.Fatalf("seed %d step %d: evacuated %v, limit %d", seed, stepN, st.Evacuated, limit)
			}
			inRoute := map[string]bool{}
			for _, svc := range topo.Services {
				rt := st.Routes[svc.Name]
				if rt == nil {
					if len(st.Routes) > 0 {
						t.Fatalf("seed %d step %d: service %s has no route", seed, stepN, svc.Name)
					}
					continue
				}
				if len(rt.Targets) == 0 {
					t.Fatalf("seed %d step %d: service %s routed to zero endpoints", seed, stepN, svc.Name)
				}
				for _, tg := range rt.Targets {
					inRoute[tg.Site] = true
				}
			}
			if !strict || len(st.Routes) == 0 {
				continue
			}
			excluded := 0
			for _, s := range topo.Sites {
				has := false
				for _, ep := range topo.Endpoints() {
					has = has || ep.Site == s.Name
				}
				if has && !inRoute[s.Name] {
					excluded++
				}
			}
			if excluded > limit {
				t.Fatalf("seed %d step %d: %d sites have no endpoint in routing, limit %d (evacuated %v, sites %v)", seed, stepN, excluded, limit, st.Evacuated, st.Sites)
			}
		}
	}
}

// TestPropertySinglePartitionedObserver: with every node live and every
// other observer seeing the truth (all up), no view of one observer changes
// routing.
func TestPropertySinglePartitionedObserver(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		topo := randomTopo(r, []string{topology.PolicyActiveActive, topology.PolicyFailover, topology.PolicyWeighted, topology.PolicyNearest})
		e := NewEngine(topo, 0)
		live := map[string]bool{}
		truth := map[string]map[string]bool{}
		for _, n := range topo.Nodes {
			live[n.Name] = true
			truth[n.Name] = map[string]bool{}
			for _, ep := range topo.Endpoints() {
				truth[n.Name][ep.ID()] = true
			}
		}
		st := e.Step(nil, Input{Now: t0, Live: live, Observations: truth, Quorum: true}).State
		want := map[string]int64{}
		for k, rt := range st.Routes {
			want[k] = rt.Revision
		}
		now := t0
		for stepN := range 40 {
			now = now.Add(time.Duration(r.IntN(30)) * time.Second)
			bad := topo.Nodes[r.IntN(len(topo.Nodes))].Name
			obs := map[string]map[string]bool{}
			for k, v := range truth {
				obs[k] = v
			}
			m := map[string]bool{}
			for _, ep := range topo.Endpoints() {
				m[ep.ID()] = r.IntN(3) > 0 && ep.Site == topo.Node(bad).Site
			}
			obs[bad] = m
			st = e.Step(st, Input{Now: now, Live: live, Observations: obs, Quorum: true}).State
			for k, rt := range st.Routes {
				if rt.Revision != want[k] {
					t.Fatalf("seed %d step %d: observer %s alone changed routing of %s: %+v", seed, stepN, bad, k, rt)
				}
			}
		}
	}
}
