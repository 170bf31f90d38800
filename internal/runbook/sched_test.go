package runbook

import (
	"testing"
)

func schedPlan(t *testing.T, src string, opts Options) (*Plan, *sched) {
	t.Helper()
	rb, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(rb, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, newSched(p)
}

func itemName(p *Plan, id int32) string {
	it := p.items[id]
	return p.Runbook.Steps[it.step].Name + "/" + p.Targets[it.target].Name
}

// TestSchedNoHeadOfLineBlocking: a full rack does not stop other racks,
// even when its items come first by priority.
func TestSchedNoHeadOfLineBlocking(t *testing.T) {
	p, s := schedPlan(t, `runbook: t
limits: {global: 10, perRack: 1}
inventory:
  servers:
    - {name: x1, site: a, rack: r1, tier: 0}
    - {name: x2, site: a, rack: r1, tier: 0}
    - {name: x3, site: a, rack: r1, tier: 0}
    - {name: y1, site: a, rack: r2, tier: 3}
steps:
  - name: s
    targets: {servers: {}}
    action: {driver: sim, op: apply}
    idempotent: true
`, Options{})
	for i := range p.items {
		s.ready(int32(i))
	}
	var got []string
	for id := s.next(); id >= 0; id = s.next() {
		got = append(got, itemName(p, id))
	}
	if len(got) != 2 || got[0] != "s/x1" || got[1] != "s/y1" {
		t.Fatalf("started %v, want [s/x1 s/y1]", got)
	}
	// Freeing rack r1 lets the next x start, not y's rack.
	s.release(0)
	if id := s.next(); id < 0 || itemName(p, id) != "s/x2" {
		t.Fatalf("after release: %d", id)
	}
	if id := s.next(); id >= 0 {
		t.Fatalf("started %s beyond the rack limit", itemName(p, id))
	}
}

func TestSchedLimitsAndPriority(t *testing.T) {
	tests := []struct {
		name   string
		limits string
		opts   Options
		want   int // how many start at once
	}{
		{"global", "{global: 3}", Options{}, 3},
		{"max-parallel replaces global", "{global: 3}", Options{MaxParallel: 5}, 5},
		{"per site", "{global: 100, perSite: 2}", Options{}, 4}, // 2 sites
		{"per rack", "{global: 100, perRack: 1}", Options{}, 4}, // 4 racks
		{"per driver", "{global: 100, perDriver: {sim: 6}}", Options{}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "runbook: t\nlimits: " + tc.limits + "\ninventory:\n  servers:\n"
			for i := 0; i < 16; i++ {
				src += "    - {name: n" + string(rune('a'+i)) + ", site: s" + string(rune('0'+i%2)) + ", rack: r" + string(rune('0'+i%4)) + ", tier: " + string(rune('0'+i%4)) + "}\n"
			}
			src += "steps:\n  - name: s\n    targets: {servers: {}}\n    action: {driver: sim, op: apply}\n    idempotent: true\n"
			p, s := schedPlan(t, src, tc.opts)
			for i := range p.items {
				s.ready(int32(i))
			}
			n := 0
			lastTier := -1
			for id := s.next(); id >= 0; id = s.next() {
				n++
				tier := int(p.items[id].prio)
				if tc.name == "global" && tier < lastTier {
					t.Fatalf("tier %d started after tier %d", tier, lastTier)
				}
				lastTier = tier
			}
			if n != tc.want {
				t.Fatalf("%d started, want %d", n, tc.want)
			}
		})
	}
}
