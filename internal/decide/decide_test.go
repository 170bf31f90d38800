package decide

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

var t0 = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

// testTopo builds sites a, b, c (datacenters) with nodes na, nb, nc and one
// service per policy, each with one endpoint per site.
func testTopo(maxEvac int, holdDown time.Duration, policy string) *topology.Topology {
	t := &topology.Topology{Decide: topology.Decide{MaxAutoEvacuatedSites: maxEvac, HoldDown: holdDown}}
	for i, s := range []string{"a", "b", "c"} {
		t.Sites = append(t.Sites, &topology.Site{Name: s, Role: topology.RoleDatacenter})
		t.Nodes = append(t.Nodes, &topology.Node{Name: "n" + s, Site: s})
		_ = i
	}
	svc := &topology.Service{Name: "web", Policy: policy, Failover: nil}
	for i, s := range []string{"a", "b", "c"} {
		svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: "web", Site: s,
			Address: fmt.Sprintf("10.0.%d.1", i+1), Port: 80, Weight: i + 1, Capacity: 10 * (i + 1)})
	}
	if policy == topology.PolicyFailover {
		svc.Failover = []string{"b", "a", "c"}
	}
	t.Services = []*topology.Service{svc}
	t.Index()
	return t
}

func ep(site string) string {
	n := map[string]int{"a": 1, "b": 2, "c": 3}[site]
	return fmt.Sprintf("web/%s/10.0.%d.1:80", site, n)
}

var all3 = map[string]bool{"na": true, "nb": true, "nc": true}

// view builds observations: every listed observer sees every endpoint up
// except those in down (site letters).
func view(observers string, down string) map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for _, o := range strings.Split(observers, ",") {
		if o == "" {
			continue
		}
		m[o] = map[string]bool{}
		for _, s := range []string{"a", "b", "c"} {
			m[o][ep(s)] = !strings.Contains(down, s)
		}
	}
	return m
}

func merge(ms ...map[string]map[string]bool) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func sites(st *State, svc string) string {
	var s []string
	for _, t := range st.Routes[svc].Targets {
		s = append(s, t.Site)
	}
	out := strings.Join(s, "")
	if st.Routes[svc].FailOpen {
		out += "!"
	}
	return out
}

type step struct {
	at        time.Duration
	live      map[string]bool
	obs       map[string]map[string]bool
	overrides []Override
	noQuorum  bool
	want      string // sites in routing, "!" suffix for fail-open
	wantAlarm string // an alarm kind that must be present ("" = none required)
	wantNoAlm bool   // no alarms at all
}

func TestStep(t *testing.T) {
	drainB := Override{ID: "o1", Kind: KindDrain, Target: "b", Who: "kim", Why: "maintenance", Created: t0, Expires: t0.Add(30 * time.Second)}
	forceDownA := Override{ID: "o2", Kind: KindForceDown, Target: ep("a"), Who: "kim", Why: "bad deploy", Created: t0, Expires: t0.Add(time.Hour)}
	forceUpC := Override{ID: "o3", Kind: KindForceUp, Target: ep("c"), Who: "kim", Why: "checks broken", Created: t0, Expires: t0.Add(time.Hour)}
	freeze := Override{ID: "o4", Kind: KindFreeze, Who: "kim", Why: "incident", Created: t0, Expires: t0.Add(time.Hour)}
	tests := []struct {
		name   string
		maxEv  int
		policy string
		steps  []step
	}{
		{name: "all up", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc", wantNoAlm: true},
		}},
		{name: "site dies, routing moves", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "ac"},
		}},
		{name: "minority down keeps up", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: merge(view("nb,nc", ""), view("na", "b")), want: "abc", wantNoAlm: true},
		}},
		{name: "tie keeps previous up", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			// nb (site b's own node) is gone; na and nc disagree on b.
			{at: 20 * time.Second, live: map[string]bool{"na": true, "nc": true}, obs: merge(view("nc", ""), view("na", "b")), want: "abc"},
		}},
		{name: "tie keeps previous down", steps: []step{
			{live: all3, obs: view("na,nb,nc", "b"), want: "ac"},
			{at: 20 * time.Second, live: map[string]bool{"na": true, "nc": true}, obs: merge(view("nc", ""), view("na", "b")), want: "ac"},
		}},
		{name: "partitioned observer is discounted", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: merge(view("nb,nc", ""), view("na", "bc")), want: "abc", wantAlarm: AlarmPartition},
		}},
		{name: "partitioned observer sees everything down", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: merge(view("nb,nc", ""), view("na", "abc")), want: "abc", wantAlarm: AlarmPartition},
		}},
		{name: "two observers partitioned from b only", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			// Two of three see b down: that is a majority, b is down.
			{at: 20 * time.Second, live: all3, obs: merge(view("nb", ""), view("na,nc", "b")), want: "ac"},
		}},
		{name: "own node dead, others see site down", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: map[string]bool{"na": true, "nc": true}, obs: view("na,nc", "b"), want: "ac"},
		}},
		{name: "own node dead, others see site up", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: map[string]bool{"na": true, "nc": true}, obs: view("na,nc", ""), want: "abc", wantNoAlm: true},
		}},
		{name: "max evacuation: second site stays", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "ac"},
			{at: 40 * time.Second, live: all3, obs: view("na,nb,nc", "bc"), want: "ac", wantAlarm: AlarmEvacuationLimit},
		}},
		{name: "max evacuation: two at once, name order", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "bc"), want: "ac", wantAlarm: AlarmEvacuationLimit},
		}},
		{name: "fail open when everything is down", maxEv: 3, steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "bc"), want: "a"},
			{at: 40 * time.Second, live: all3, obs: view("na,nb,nc", "abc"), want: "a!", wantAlarm: AlarmFailOpen},
			{at: 60 * time.Second, live: all3, obs: view("na,nb,nc", "ab"), want: "c", wantNoAlm: true},
		}},
		{name: "fail open on first decision", maxEv: 3, steps: []step{
			{live: all3, obs: view("na,nb,nc", "abc"), want: "abc!", wantAlarm: AlarmFailOpen},
		}},
		{name: "dampening: removal waits, restore passes", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "ac"},
			{at: 21 * time.Second, live: all3, obs: view("na,nb,nc", ""), want: "abc"},  // restore: immediate
			{at: 22 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "abc"}, // flap: held down
			{at: 30 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "abc"},
			{at: 31 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "ac"}, // holdDown (10s) after 21s
		}},
		{name: "drain bypasses hold-down and expires", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: time.Second, live: all3, obs: view("na,nb,nc", ""), overrides: []Override{drainB}, want: "ac"},
			{at: 29 * time.Second, live: all3, obs: view("na,nb,nc", ""), overrides: []Override{drainB}, want: "ac"},
			{at: 30 * time.Second, live: all3, obs: view("na,nb,nc", ""), overrides: []Override{drainB}, want: "abc"},
		}},
		{name: "drain does not count as automatic evacuation", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), overrides: []Override{drainB}, want: "ac"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "c"), overrides: []Override{drainB}, want: "a"},
		}},
		{name: "force down and force up", steps: []step{
			{live: all3, obs: view("na,nb,nc", "c"), overrides: []Override{forceDownA, forceUpC}, want: "bc"},
		}},
		{name: "freeze keeps routing", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), overrides: []Override{freeze}, want: "abc", wantAlarm: AlarmEvacuationLimit},
		}},
		{name: "no quorum: nothing changes", steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "abc"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), noQuorum: true, want: "abc", wantAlarm: AlarmNoQuorum},
			{at: 40 * time.Second, live: map[string]bool{"na": true}, obs: view("na", "bc"), want: "abc", wantAlarm: AlarmNoQuorum},
		}},
		{name: "failover policy follows order", policy: topology.PolicyFailover, steps: []step{
			{live: all3, obs: view("na,nb,nc", ""), want: "b"},
			{at: 20 * time.Second, live: all3, obs: view("na,nb,nc", "b"), want: "a"},
		}},
		{name: "weighted", policy: topology.PolicyWeighted, steps: []step{
			{live: all3, obs: view("na,nb,nc", "a"), want: "bc"},
		}},
		{name: "nearest", policy: topology.PolicyNearest, steps: []step{
			{live: all3, obs: view("na,nb,nc", "a"), want: "bc"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxEv := tc.maxEv
			if maxEv == 0 {
				maxEv = 1
			}
			policy := tc.policy
			if policy == "" {
				policy = topology.PolicyActiveActive
			}
			e := NewEngine(testTopo(maxEv, 10*time.Second, policy), 0)
			var st *State
			for i, s := range tc.steps {
				out := e.Step(st, Input{Now: t0.Add(s.at), Live: s.live, Observations: s.obs, Overrides: s.overrides, Quorum: !s.noQuorum})
				st = out.State
				if got := sites(st, "web"); got != s.want {
					t.Fatalf("step %d: routing %q, want %q (alarms %v, verdicts %v)", i, got, s.want, st.Alarms, st.Endpoints)
				}
				if s.wantAlarm != "" && !slices.ContainsFunc(st.Alarms, func(a Alarm) bool { return a.Kind == s.wantAlarm }) {
					t.Fatalf("step %d: alarms %v, want a %s alarm", i, st.Alarms, s.wantAlarm)
				}
				if s.wantNoAlm && len(st.Alarms) > 0 {
					t.Fatalf("step %d: unexpected alarms %v", i, st.Alarms)
				}
			}
		})
	}
}

func TestStepDetails(t *testing.T) {
	e := NewEngine(testTopo(1, 10*time.Second, topology.PolicyNearest), 0)
	out := e.Step(nil, Input{Now: t0, Live: all3, Observations: view("na,nb,nc", "a"), Quorum: true})
	r := out.State.Routes["web"]
	if got := len(r.BySite["a"]); got != 2 {
		t.Errorf("nearest: site a (down) should fall back to all healthy targets, got %d", got)
	}
	if got := r.BySite["b"]; len(got) != 1 || got[0].Site != "b" || got[0].Weight != 20 {
		t.Errorf("nearest: site b targets %+v, want only b with capacity weight 20", got)
	}
	if r.Revision != 1 {
		t.Errorf("revision %d, want 1", r.Revision)
	}
	if out.State.Sites["a"].State != Down || !out.State.Sites["a"].Evacuated {
		t.Errorf("site a verdict %+v, want down and evacuated", out.State.Sites["a"])
	}
	var kinds []string
	for _, ev := range out.Events {
		kinds = append(kinds, ev.Kind+":"+ev.Subject)
	}
	for _, want := range []string{"endpoint:" + ep("a"), "site:a", "route:web"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("events %v lack %s", kinds, want)
		}
	}
	// Same input again: no events, same revision.
	out2 := e.Step(out.State, Input{Now: t0.Add(time.Second), Live: all3, Observations: view("na,nb,nc", "a"), Quorum: true})
	if len(out2.Events) != 0 || out2.State.Routes["web"].Revision != 1 {
		t.Errorf("steady state produced events %v, revision %d", out2.Events, out2.State.Routes["web"].Revision)
	}
}

func TestOverrideReason(t *testing.T) {
	e := NewEngine(testTopo(1, 10*time.Second, topology.PolicyActiveActive), 0)
	drain := Override{ID: "d", Kind: KindDrain, Target: "c", Who: "kim", Why: "UPS work", Created: t0, Expires: t0.Add(time.Minute)}
	st := e.Step(nil, Input{Now: t0, Live: all3, Observations: view("na,nb,nc", ""), Quorum: true}).State
	st = e.Step(st, Input{Now: t0.Add(time.Second), Live: all3, Observations: view("na,nb,nc", ""), Overrides: []Override{drain}, Quorum: true}).State
	if r := st.Routes["web"].Reason; !strings.Contains(r, "override drain c by kim: UPS work") {
		t.Fatalf("route reason %q does not name the drain", r)
	}
}

func TestNextWake(t *testing.T) {
	e := NewEngine(testTopo(1, 10*time.Second, topology.PolicyActiveActive), 0)
	in := func(at time.Duration, down string, ovs ...Override) Input {
		return Input{Now: t0.Add(at), Live: all3, Observations: view("na,nb,nc", down), Overrides: ovs, Quorum: true}
	}
	st := e.Step(nil, in(0, "")).State
	if !st.NextWake.IsZero() {
		t.Fatalf("steady state wakes at %v", st.NextWake)
	}
	st = e.Step(st, in(20*time.Second, "b")).State // long after the first routing: not damped
	st = e.Step(st, in(21*time.Second, "")).State  // restore: passes
	st = e.Step(st, in(22*time.Second, "b")).State // damped until 21s+10s
	if want := t0.Add(31 * time.Second); !st.NextWake.Equal(want) {
		t.Fatalf("damped: NextWake %v, want %v", st.NextWake, want)
	}
	drain := Override{ID: "d", Kind: KindDrain, Target: "c", Who: "kim", Why: "w", Created: t0, Expires: t0.Add(time.Minute)}
	st = e.Step(st, in(40*time.Second, "", drain)).State
	if want := drain.Expires; !st.NextWake.Equal(want) {
		t.Fatalf("override: NextWake %v, want its expiry %v", st.NextWake, want)
	}
}

func TestOverrideValidate(t *testing.T) {
	ok := Override{ID: "x", Kind: KindDrain, Target: "a", Who: "kim", Why: "w", Created: t0, Expires: t0.Add(time.Hour)}
	tests := []struct {
		name string
		mod  func(*Override)
		ok   bool
	}{
		{"valid", func(*Override) {}, true},
		{"freeze without target", func(o *Override) { o.Kind, o.Target = KindFreeze, "" }, true},
		{"bad kind", func(o *Override) { o.Kind = "nuke" }, false},
		{"no target", func(o *Override) { o.Target = "" }, false},
		{"no who", func(o *Override) { o.Who = "" }, false},
		{"no why", func(o *Override) { o.Why = "" }, false},
		{"expired before created", func(o *Override) { o.Expires = t0 }, false},
	}
	for _, tc := range tests {
		o := ok
		tc.mod(&o)
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if ok.Active(t0.Add(-time.Second)) || !ok.Active(t0) || ok.Active(t0.Add(time.Hour)) {
		t.Error("Active: wrong window")
	}
}
