package topogen

import (
	"bytes"
	"testing"

	"github.com/firebreak/firebreak/internal/topology"
)

func TestGenerateShape(t *testing.T) {
	topo := Generate(Config{Services: 400, Sites: 6, EndpointsPerService: 4, Depth: 5, RacksPerSite: 3, Seed: 3})
	if len(topo.Services) != 400 || len(topo.Sites) != 6 || len(topo.Datastores) != 40 || len(topo.Nodes) != 6 {
		t.Fatalf("shape: %d services, %d sites, %d datastores, %d nodes", len(topo.Services), len(topo.Sites), len(topo.Datastores), len(topo.Nodes))
	}
	if n := len(topo.Endpoints()); n != 1600 {
		t.Errorf("endpoints: %d, want 1600", n)
	}
	deps := 0
	single := 0
	for _, s := range topo.Services {
		deps += len(s.DependsOn)
		sites := map[string]bool{}
		for _, e := range s.Endpoints {
			sites[e.Site] = true
			if e.Rack == "" {
				t.Fatalf("%s: endpoint without rack", s.Name)
			}
		}
		if len(sites) == 1 {
			single++
		}
		for _, d := range s.DependsOn {
			if topo.Service(d.Target) == nil && topo.Datastore(d.Target) == nil {
				t.Fatalf("%s depends on unknown %s", s.Name, d.Target)
			}
		}
	}
	if avg := float64(deps) / 400; avg < 3 || avg > 6 {
		t.Errorf("average dependencies %.1f, want about 5", avg)
	}
	if single == 0 || single > 40 {
		t.Errorf("%d single-site services, want a few", single)
	}
	// Depth: the longest hard-or-soft chain of services has at most Depth
	// services.
	memo := map[string]int{}
	var depth func(name string) int
	depth = func(name string) int {
		s := topo.Service(name)
		if s == nil {
			return 0
		}
		if d, ok := memo[name]; ok {
			return d
		}
		best := 0
		for _, d := range s.DependsOn {
			best = max(best, depth(d.Target))
		}
		memo[name] = best + 1
		return best + 1
	}
	longest := 0
	for _, s := range topo.Services {
		longest = max(longest, depth(s.Name))
	}
	if longest < 3 || longest > 5 {
		t.Errorf("longest chain %d services, want between 3 and 5", longest)
	}
}

func TestWriteParsesAndIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, Generate(Config{Services: 150, Sites: 4, RacksPerSite: 2})); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, Generate(Config{Services: 150, Sites: 4, RacksPerSite: 2})); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same config, different output")
	}
	topo, err := topology.Parse("gen.yaml", a.Bytes())
	if err != nil {
		t.Fatalf("generated topology does not parse: %v", err)
	}
	if len(topo.Services) != 150 || len(topo.Endpoints()) != 1500 {
		t.Errorf("parsed %d services, %d endpoints", len(topo.Services), len(topo.Endpoints()))
	}
	var c bytes.Buffer
	if err := Write(&c, Generate(Config{Services: 150, Sites: 4, RacksPerSite: 2, Seed: 2})); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds, same output")
	}
}
