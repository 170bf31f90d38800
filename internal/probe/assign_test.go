package probe

import (
	"fmt"
	"slices"
	"testing"

	"github.com/firebreak/firebreak/internal/topology"
)

func assignTopo(nsites, neps int) *topology.Topology {
	t := &topology.Topology{}
	svc := &topology.Service{Name: "web"}
	for i := range nsites {
		s := fmt.Sprintf("s%d", i)
		t.Sites = append(t.Sites, &topology.Site{Name: s, Role: topology.RoleDatacenter})
		t.Nodes = append(t.Nodes, &topology.Node{Name: "n" + s, Site: s})
		for j := range neps {
			svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: "web", Site: s, Address: fmt.Sprintf("10.0.%d.%d", i, j), Port: 80})
		}
	}
	t.Services = []*topology.Service{svc}
	t.Index()
	return t
}

func allLive(t *topology.Topology) map[string]bool {
	m := map[string]bool{}
	for _, n := range t.Nodes {
		m[n.Name] = true
	}
	return m
}

func TestAssign(t *testing.T) {
	tests := []struct {
		nsites    int
		dead      string
		wantCount int // observers per endpoint whose own site is live
	}{
		{nsites: 2, wantCount: 2}, // own + the only other site
		{nsites: 3, wantCount: 3}, // own + 2 others
		{nsites: 6, wantCount: 3}, // own + 2 of 5
		{nsites: 6, dead: "ns1", wantCount: 3},
	}
	for _, tc := range tests {
		topo := assignTopo(tc.nsites, 20)
		live := allLive(topo)
		delete(live, tc.dead)
		a := Assign(topo, live, 0)
		for _, ep := range topo.Endpoints() {
			obs := a[ep.ID()]
			want := tc.wantCount
			if "n"+ep.Site == tc.dead {
				want-- // own node is dead
			}
			if len(obs) != want {
				t.Fatalf("%d sites, dead %q: %s observed by %v, want %d observers", tc.nsites, tc.dead, ep.ID(), obs, want)
			}
			if "n"+ep.Site != tc.dead && !slices.Contains(obs, "n"+ep.Site) {
				t.Errorf("%s not observed by its own site's node: %v", ep.ID(), obs)
			}
			if slices.Contains(obs, tc.dead) && tc.dead != "" {
				t.Errorf("%s observed by dead node %s", ep.ID(), tc.dead)
			}
		}
	}
}

func TestAssignDeterministicAndStable(t *testing.T) {
	topo := assignTopo(6, 200)
	live := allLive(topo)
	a1, a2 := Assign(topo, live, 0), Assign(topo, live, 0)
	for id, obs := range a1 {
		if !slices.Equal(obs, a2[id]) {
			t.Fatalf("not deterministic for %s: %v vs %v", id, obs, a2[id])
		}
	}
	// Load spread: every node observes a fair share.
	for _, n := range topo.Nodes {
		if got := len(a1.For(n.Name)); got < 200+2*200*5/5/2 {
			t.Errorf("node %s observes only %d endpoints", n.Name, got)
		}
	}
	// When ns3 dies only endpoints it watched change observers.
	delete(live, "ns3")
	a3 := Assign(topo, live, 0)
	for id, obs := range a1 {
		if !slices.Contains(obs, "ns3") && !slices.Equal(obs, a3[id]) {
			t.Errorf("%s moved from %v to %v although ns3 did not watch it", id, obs, a3[id])
		}
	}
}
