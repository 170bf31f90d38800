package view

import (
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// TestServiceStateDependencies checks the dependency- and capacity-aware
// service state that both the dashboard and the status page show.
func TestServiceStateDependencies(t *testing.T) {
	type svc struct {
		name string
		down []bool // per endpoint (sites a, b): verdict down
		peak int
		deps []topology.Dependency
	}
	hard := func(n string) topology.Dependency { return topology.Dependency{Target: n, Hard: true} }
	soft := func(n string) topology.Dependency { return topology.Dependency{Target: n} }
	cases := []struct {
		name   string
		svcs   []svc
		want   map[string]string
		reason string // of service "app", when set
	}{
		{"all up", []svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{hard("login")}},
			{name: "login", down: []bool{false, false}}},
			map[string]string{"app": StateUp, "login": StateUp}, ""},
		{"hard dependency down: down although its endpoints are up",
			[]svc{{name: "app", down: []bool{false, true}, deps: []topology.Dependency{hard("login")}},
				{name: "login", down: []bool{true, true}}},
			map[string]string{"app": StateDown, "login": StateDown}, "hard dependency login is down"},
		{"soft dependency down: degraded",
			[]svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{soft("search")}},
				{name: "search", down: []bool{true, true}}},
			map[string]string{"app": StateDegraded, "search": StateDown}, "soft dependency search is down"},
		{"hard dependency degraded: degraded",
			[]svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{hard("login")}},
				{name: "login", down: []bool{false, true}}},
			map[string]string{"app": StateDegraded, "login": StateDegraded}, "hard dependency login is degraded"},
		{"soft dependency degraded: no effect",
			[]svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{soft("login")}},
				{name: "login", down: []bool{false, true}}},
			map[string]string{"app": StateUp, "login": StateDegraded}, ""},
		{"capacity below peak: degraded",
			[]svc{{name: "app", down: []bool{false, true}, peak: 2}},
			map[string]string{"app": StateDegraded}, "capacity 1 below peak 2"},
		{"capacity meets peak: up", []svc{{name: "app", down: []bool{false, false}, peak: 2}},
			map[string]string{"app": StateUp}, ""},
		{"chain: app -> api -> db-svc (hard) down",
			[]svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{hard("api")}},
				{name: "api", down: []bool{false, false}, deps: []topology.Dependency{hard("dbsvc")}},
				{name: "dbsvc", down: []bool{true, true}}},
			map[string]string{"app": StateDown, "api": StateDown, "dbsvc": StateDown}, "hard dependency api is down"},
		{"cycle settles", []svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{soft("b")}},
			{name: "b", down: []bool{false, true}, deps: []topology.Dependency{hard("app")}}},
			map[string]string{"app": StateUp, "b": StateDegraded}, ""},
		{"dependency on a datastore or unknown name is ignored",
			[]svc{{name: "app", down: []bool{false, false}, deps: []topology.Dependency{hard("pg-main")}}},
			map[string]string{"app": StateUp}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top := &topology.Topology{}
			r := &Raw{Now: time.Now(), Topology: top, EndpointVerdicts: map[string]decide.EndpointVerdict{}, Routes: map[string]*routing.Route{}}
			for _, s := range tc.svcs {
				ts := &topology.Service{Name: s.name, Peak: s.peak, DependsOn: s.deps}
				route := &routing.Route{Service: s.name, Revision: 1}
				for i, down := range s.down {
					ep := &topology.Endpoint{Service: s.name, Site: string(rune('a' + i)), Address: "10.0.0.1", Port: 443, Weight: 1, Capacity: 1}
					ts.Endpoints = append(ts.Endpoints, ep)
					st := decide.Up
					if down {
						st = decide.Down
					} else {
						route.Targets = append(route.Targets, routing.Target{ID: ep.ID(), Site: ep.Site})
					}
					r.EndpointVerdicts[ep.ID()] = decide.EndpointVerdict{ID: ep.ID(), State: st}
				}
				r.Routes[s.name] = route
				top.Services = append(top.Services, ts)
			}
			top.Index()
			snap := Build(r)
			for name, want := range tc.want {
				if got := snap.Find(name).State; got != want {
					t.Errorf("%s: state %s, want %s", name, got, want)
				}
			}
			if got := snap.Find("app").StateReason; got != tc.reason {
				t.Errorf("app: reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestDemoBurnServiceStates is the demo's case: pangyo burns; old-messenger
// is re-routed to gasan, whose endpoint is up, but its hard dependency
// old-login lived only in pangyo, so it is down, not degraded. Services of
// the N+1 company keep serving.
func TestDemoBurnServiceStates(t *testing.T) {
	top, err := topology.Load("../../demo/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &Raw{Now: time.Now(), Topology: top, EndpointVerdicts: map[string]decide.EndpointVerdict{}, Routes: map[string]*routing.Route{}}
	for _, svc := range top.Services {
		route := &routing.Route{Service: svc.Name, Revision: 2}
		for _, ep := range svc.Endpoints {
			st := decide.Up
			if ep.Site == "pangyo" {
				st = decide.Down
			} else {
				route.Targets = append(route.Targets, routing.Target{ID: ep.ID(), Site: ep.Site})
			}
			r.EndpointVerdicts[ep.ID()] = decide.EndpointVerdict{ID: ep.ID(), State: st}
		}
		if len(route.Targets) == 0 { // fail-open: the leader keeps the last set
			route.FailOpen = true
		}
		r.Routes[svc.Name] = route
	}
	snap := Build(r)
	msg := snap.Find("old-messenger")
	if msg == nil || msg.State != StateDown || msg.StateReason != "hard dependency old-login is down" {
		t.Fatalf("old-messenger: %+v", msg)
	}
	if st := snap.Find("old-login").State; st != StateDown {
		t.Errorf("old-login: %s, want down", st)
	}
	for _, s := range snap.Services {
		if strings.HasPrefix(s.Name, "new-") && s.State == StateDown {
			t.Errorf("%s is down after losing pangyo (%s); the N+1 company should keep serving", s.Name, s.StateReason)
		}
	}
}
