package runbook

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// waitsOf returns, for each item "step/target", the sorted list of items it
// waits for ("step/target" of every member of every group it waits on).
func waitsOf(p *Plan) map[string][]string {
	members := make([][]string, len(p.groups))
	for _, it := range p.items {
		for _, g := range it.memberOf {
			members[g] = append(members[g], p.Runbook.Steps[it.step].Name+"/"+p.Targets[it.target].Name)
		}
	}
	out := map[string][]string{}
	for _, it := range p.items {
		key := p.Runbook.Steps[it.step].Name + "/" + p.Targets[it.target].Name
		var w []string
		for _, g := range it.waits {
			w = append(w, members[g]...)
		}
		slices.Sort(w)
		out[key] = w
	}
	return out
}

const planInventory = `inventory:
  servers:
    - {name: a1, site: a, rack: r1, role: storage}
    - {name: a2, site: a, rack: r2, role: app, tier: 0}
    - {name: b1, site: b, rack: r1, role: storage}
    - {name: b2, site: b, rack: r1, role: app}
`

func TestPlanScopes(t *testing.T) {
	step := func(name, roles, deps string) string {
		return "  - name: " + name + "\n    targets: {servers: {roles: [" + roles + "]}}\n    action: {driver: sim, op: apply}\n    idempotent: true\n" + deps
	}
	tests := []struct {
		name string
		dep  string
		want map[string][]string
	}{
		{"target", "    dependsOn: [{step: power, scope: target}]\n", map[string][]string{
			"start/a2": {"power/a2"}, "start/b2": {"power/b2"}}},
		{"rack", "    dependsOn: [{step: power, scope: rack}]\n", map[string][]string{
			"start/a2": {"power/a2"}, "start/b2": {"power/b1", "power/b2"}}},
		{"site", "    dependsOn: [{step: power, scope: site}]\n", map[string][]string{
			"start/a2": {"power/a1", "power/a2"}, "start/b2": {"power/b1", "power/b2"}}},
		{"all", "    dependsOn: [{step: power, scope: all}]\n", map[string][]string{
			"start/a2": {"power/a1", "power/a2", "power/b1", "power/b2"}, "start/b2": {"power/a1", "power/a2", "power/b1", "power/b2"}}},
		{"default between servers is target", "    dependsOn: [power]\n", map[string][]string{
			"start/a2": {"power/a2"}, "start/b2": {"power/b2"}}},
		{"target absent from the dependency waits for nothing", "    dependsOn: [{step: store, scope: target}]\n", map[string][]string{
			"start/a2": nil, "start/b2": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "runbook: t\n" + planInventory + "steps:\n" + step("power", "storage, app", "") + step("store", "storage", "") + step("start", "app", tc.dep)
			rb, err := Parse("t.yaml", []byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPlan(rb, Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := waitsOf(p)
			for k, want := range tc.want {
				if !slices.Equal(got[k], want) {
					t.Errorf("%s waits for %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

func TestPlanTopologyOrderAndPriority(t *testing.T) {
	rb, err := parseWith(t, `runbook: t
topology: topo.yaml
steps:
  - name: start
    targets: {services: {}, datastores: {}}
    action: {driver: sim, op: apply}
    idempotent: true
  - name: unordered
    order: none
    targets: {services: {}}
    action: {driver: sim, op: apply}
    idempotent: true
`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(rb, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := waitsOf(p)
	want := map[string][]string{
		"start/login@a":     {"start/db@a"},
		"start/login@b":     {"start/db@b"},
		"start/shop@a":      {"start/login@a"},
		"start/front@a":     {"start/shop@a"},
		"start/db@a":        nil,
		"unordered/front@a": nil,
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s waits for %v, want %v", k, got[k], w)
		}
	}
	// Lower tiers first: login (0) before shop (1) before front (2).
	prio := map[string]int32{}
	for _, it := range p.items {
		prio[p.Runbook.Steps[it.step].Name+"/"+p.Targets[it.target].Name] = it.prio
	}
	if !(prio["start/login@a"] < prio["start/shop@a"] && prio["start/shop@a"] < prio["start/front@a"]) {
		t.Fatalf("priorities %v", prio)
	}
}

func TestPlanOnly(t *testing.T) {
	src := "runbook: t\n" + planInventory + "steps:\n  - name: s\n    targets: {servers: {}}\n    action: {driver: sim, op: apply}\n    idempotent: true\n"
	rb, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		only []string
		want int
		err  string
	}{
		{nil, 4, ""},
		{[]string{"site=a"}, 2, ""},
		{[]string{"site=a", "site=b"}, 4, ""},
		{[]string{"site=b,role=app"}, 1, ""},
		{[]string{"rack=r1"}, 3, ""},
		{[]string{"name=a2"}, 1, ""},
		{[]string{"planet=earth"}, 0, "unknown key"},
		{[]string{"site"}, 0, "expected key=value"},
	}
	for _, tc := range tests {
		p, err := NewPlan(rb, Options{Only: tc.only}, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %v, want %q", tc.only, err, tc.err)
			}
			continue
		}
		if err != nil || p.Items() != tc.want {
			t.Errorf("%v: %d items, %v; want %d", tc.only, p.Items(), err, tc.want)
		}
	}
}

func TestPredict(t *testing.T) {
	// 4 servers, 2 steps of 10s each, per-target chain. Global 2: the
	// work (80s) over 2 slots gives 40s; the chain is 20s.
	src := "runbook: t\nlimits: {global: 2}\n" + planInventory + `steps:
  - name: a
    targets: {servers: {}}
    action: {driver: sim, op: apply}
    idempotent: true
    estimate: 10s
  - name: b
    dependsOn: [a]
    targets: {servers: {}}
    action: {driver: sim, op: apply}
    idempotent: true
    estimate: 10s
    limits: {perRack: 1}
`
	rb, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(rb, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := p.Predict()
	if b.Makespan != 40*time.Second || b.Binding != "global" || b.Critical != 20*time.Second || b.Work != 80*time.Second {
		t.Fatalf("predict %+v", b)
	}
	// With room for all, the b-step rack limit (b/r1 holds b1 and b2:
	// 20s of b-work on one slot) and the chain (20s) bind.
	p, _ = NewPlan(rb, Options{MaxParallel: 100}, nil)
	if b := p.Predict(); b.Makespan != 20*time.Second {
		t.Fatalf("predict with max-parallel 100: %+v", b)
	}
}
