package decide

import (
	"fmt"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/topology"
)

// BenchmarkStep100k: one decision over 100,000 endpoints (1,000 services
// x 100 endpoints over 20 sites, 20 observers, 3 opinions per endpoint).
func BenchmarkStep100k(b *testing.B) {
	t := &topology.Topology{Decide: topology.Decide{MaxAutoEvacuatedSites: 1, HoldDown: 10 * time.Second}}
	for i := range 20 {
		s := fmt.Sprintf("s%02d", i)
		t.Sites = append(t.Sites, &topology.Site{Name: s, Role: topology.RoleDatacenter})
		t.Nodes = append(t.Nodes, &topology.Node{Name: "n" + s, Site: s})
	}
	for i := range 1000 {
		svc := &topology.Service{Name: fmt.Sprintf("svc%d", i), Policy: topology.PolicyActiveActive}
		for j := range 100 {
			svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: svc.Name, Site: fmt.Sprintf("s%02d", j%20),
				Address: fmt.Sprintf("10.%d.%d.%d", i/256, i%256, j), Port: 80, Weight: 1, Capacity: 1})
		}
		t.Services = append(t.Services, svc)
	}
	t.Index()
	e := NewEngine(t, 0)
	live := map[string]bool{}
	for _, n := range t.Nodes {
		live[n.Name] = true
	}
	tab := e.NewTable()
	for id, o := range probe.Assign(t, live, 0) {
		for _, n := range o {
			tab.Set(n, id, true)
		}
	}
	in := Input{Now: t0, Live: live, Table: tab, Quorum: true}
	st := e.Step(nil, in).State
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		in.Now = t0.Add(time.Duration(i) * time.Second)
		st = e.Step(st, in).State
	}
}
