package analysis

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/firebreak/firebreak/internal/topogen"
	"github.com/firebreak/firebreak/internal/topology"
)

// naiveStatus evaluates one service or datastore by the definition, with
// plain recursion: the reference the fast evaluator must agree with.
func naiveStatus(t *topology.Topology, name string, lost map[string]bool, memo map[string]Status) Status {
	if s, ok := memo[name]; ok {
		return s
	}
	if d := t.Datastore(name); d != nil {
		st := Down
		if !lost[d.Primary] {
			st = Up
		} else {
			for _, r := range d.Replicas {
				if !lost[r.Site] {
					st = Failover
				}
			}
		}
		memo[name] = st
		return st
	}
	s := t.Service(name)
	n, c := 0, 0
	for _, e := range s.Endpoints {
		if !lost[e.Site] {
			n++
			c += e.Capacity
		}
	}
	if s.Policy == topology.PolicyFailover {
		// Only the first site in failover order with an endpoint left
		// serves.
		order := append([]string{}, s.Failover...)
		for _, e := range s.Endpoints {
			order = append(order, e.Site)
		}
		c = 0
		for _, site := range order {
			if lost[site] {
				continue
			}
			found := false
			for _, e := range s.Endpoints {
				if e.Site == site {
					found = true
					c += e.Capacity
				}
			}
			if found {
				break
			}
		}
	}
	own := Up
	switch {
	case n == 0 || (s.Peak > 0 && c == 0):
		own = Down
	case s.Peak > 0 && c < s.Peak:
		own = Degraded
	}
	st := own
	for _, d := range s.DependsOn {
		ds := naiveStatus(t, d.Target, lost, memo)
		switch {
		case ds == Down && d.Hard:
			st = Down
		case st == Up && ds == Down, st == Up && ds == Degraded && d.Hard:
			st = Degraded
		}
	}
	memo[name] = st
	return st
}

// TestAgainstNaive compares every site and site-pair scenario of generated
// topologies with the naive evaluator.
func TestAgainstNaive(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		topo := topogen.Generate(topogen.Config{Services: 300, Sites: 4 + int(seed%3), Seed: seed, SingleSite: 0.1, RacksPerSite: 2})
		res, err := Analyze(context.Background(), topo, Options{Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		checked, failover := 0, 0
		for _, s := range topo.Services {
			if s.Policy == topology.PolicyFailover {
				failover++
			}
		}
		if failover == 0 {
			t.Fatalf("seed %d: no failover-policy service generated", seed)
		}
		for _, sc := range res.Scenarios {
			if sc.Kind != KindSite && sc.Kind != KindSitePair {
				continue
			}
			lost := map[string]bool{}
			for _, s := range sc.Lost {
				lost[s] = true
			}
			got := map[string]Status{}
			for _, si := range sc.Services {
				got[si.Service] = si.Status
				if si.Chain[0].Name != si.Service || si.Chain[len(si.Chain)-1].Reason == "" {
					t.Fatalf("seed %d %s %s: malformed chain %s", seed, sc.ID, si.Service, ChainString(si.Chain))
				}
			}
			memo := map[string]Status{}
			down := 0
			for _, s := range topo.Services {
				want := naiveStatus(topo, s.Name, lost, memo)
				g, ok := got[s.Name]
				if !ok {
					g = Up
				}
				if g != want {
					t.Fatalf("seed %d %s: %s is %s, naive says %s", seed, sc.ID, s.Name, g, want)
				}
				if want == Down {
					down++
				}
				checked++
			}
			if down != sc.Down {
				t.Fatalf("seed %d %s: Down=%d, counted %d", seed, sc.ID, sc.Down, down)
			}
		}
		if checked == 0 {
			t.Fatal("nothing checked")
		}
	}
}

// TestGeneratedRoundTrip: a generated topology written as YAML parses back
// and analyses to the same findings.
func TestGeneratedRoundTrip(t *testing.T) {
	topo := topogen.Generate(topogen.Config{Services: 200, Sites: 5, RacksPerSite: 2, Seed: 7})
	var buf bytes.Buffer
	if err := topogen.Write(&buf, topo); err != nil {
		t.Fatal(err)
	}
	back, err := topology.Parse("gen.yaml", buf.Bytes())
	if err != nil {
		t.Fatalf("generated YAML does not parse: %v", err)
	}
	a, err := Analyze(context.Background(), topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Analyze(context.Background(), back, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Findings) != len(b.Findings) || len(a.Findings) == 0 {
		t.Fatalf("findings: %d in memory, %d after the round trip", len(a.Findings), len(b.Findings))
	}
	for i := range a.Findings {
		if a.Findings[i].ID != b.Findings[i].ID {
			t.Fatalf("finding %d: %s vs %s", i, a.Findings[i].ID, b.Findings[i].ID)
		}
	}
}

// FuzzAnalyze: any topology the parser accepts analyses and renders in
// every format without panicking.
func FuzzAnalyze(f *testing.F) {
	for _, ex := range []string{"kakao-2022.yaml", "fixed.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", ex))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(sites3 + "services:\n  a: {endpoints: [{site: a, rack: r1, address: 1.2.3.4, port: 1}], dependsOn: [{datastore: d, hard: false}]}\ndatastores:\n  d: {primary: b}\n"))
	f.Add([]byte("sites: {x: {}}\nservices:\n  s: {peak: 5, endpoints: [{site: x, address: a, port: 1, capacity: 0}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := topology.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		res, err := Analyze(context.Background(), topo, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{FormatText, FormatJSON, FormatDot} {
			var buf bytes.Buffer
			if err := Write(&buf, format, res, topo, WriteOptions{}); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
	})
}
