package view

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// NodeInfo is the liveness record a node keeps at store.NodeKey(name) under
// its lease (the JSON shape written by internal/node).
type NodeInfo struct {
	Name    string    `json:"name"`
	Site    string    `json:"site"`
	API     string    `json:"api,omitempty"`
	DNS     string    `json:"dns,omitempty"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

// Raw is everything read from the store, before it is assembled into a
// Snapshot by Build. Maps are keyed as in the store (endpoint ID, site,
// service, override ID, node name).
type Raw struct {
	Node        string
	Now         time.Time
	Revision    int64
	Topology    *topology.Topology
	TopologyRev int64

	EndpointVerdicts map[string]decide.EndpointVerdict
	SiteVerdicts     map[string]decide.SiteVerdict
	Routes           map[string]*routing.Route
	// Observations maps observer -> endpoint ID -> observation.
	Observations map[string]map[string]probe.Observation
	Overrides    map[string]decide.Override
	// History holds recent events, oldest first.
	History []decide.Event
	// Live holds the nodes with a live lease.
	Live   map[string]NodeInfo
	Leader string
	Store  StoreHealth

	Stale       bool
	StaleSince  time.Time
	StaleReason string
}

// MaxHistory is how many recent history events a Snapshot carries.
const MaxHistory = 200

// Build assembles a Snapshot from raw store contents. It never fails: what
// is missing shows as unknown.
func Build(r *Raw) *Snapshot {
	s := &Snapshot{
		Node: r.Node, Generated: r.Now, Revision: r.Revision,
		Stale: r.Stale, StaleSince: r.StaleSince, StaleReason: r.StaleReason,
		Leader: r.Leader, Store: r.Store,
		Sites: []Site{}, Services: []Service{}, Observers: []Observer{}, Overrides: []Override{},
		Alarms: []decide.Alarm{}, History: []decide.Event{}, Nodes: []Node{},
	}
	if s.Store.Members == nil {
		s.Store.Members = []Member{}
	}
	t := r.Topology
	if t == nil {
		t = &topology.Topology{}
		t.Index()
	}
	s.Topology = TopologyInfo{Name: t.Name, Revision: r.TopologyRev, Zone: t.DNS.Zone}

	// Overrides, newest first; active drains by site.
	drains := map[string]*Override{}
	for _, o := range r.Overrides {
		s.Overrides = append(s.Overrides, Override{Override: o, Active: o.Active(r.Now)})
	}
	sort.Slice(s.Overrides, func(i, j int) bool {
		a, b := s.Overrides[i], s.Overrides[j]
		if a.Active != b.Active {
			return a.Active
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.ID < b.ID
	})
	for i := range s.Overrides {
		o := &s.Overrides[i]
		if o.Active && o.Kind == decide.KindDrain && drains[o.Target] == nil {
			drains[o.Target] = o
		}
	}

	// Nodes: declared ones, plus live ones the topology does not name.
	siteOf := map[string]string{}
	for _, n := range t.Nodes {
		li, alive := r.Live[n.Name]
		nd := Node{Name: n.Name, Site: n.Site, API: n.API, DNS: n.DNS, Alive: alive, Leader: n.Name == r.Leader}
		if alive {
			nd.Version, nd.Started = li.Version, li.Started
			if li.API != "" { // the address it actually listens on
				nd.API = li.API
			}
			if li.DNS != "" {
				nd.DNS = li.DNS
			}
		}
		s.Nodes = append(s.Nodes, nd)
		siteOf[n.Name] = n.Site
	}
	for name, li := range r.Live {
		if t.Node(name) != nil {
			continue
		}
		s.Nodes = append(s.Nodes, Node{Name: name, Site: li.Site, API: li.API, DNS: li.DNS, Version: li.Version, Started: li.Started, Alive: true, Leader: name == r.Leader})
		siteOf[name] = li.Site
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })

	// History and alarms still raised within it.
	hist := r.History
	if len(hist) > MaxHistory {
		hist = hist[len(hist)-MaxHistory:]
	}
	for i := len(hist) - 1; i >= 0; i-- {
		s.History = append(s.History, hist[i])
	}
	raised := map[string]decide.Alarm{}
	var order []string
	for _, e := range r.History {
		if e.Kind != decide.EventAlarm {
			continue
		}
		if e.To == "raised" {
			if _, ok := raised[e.Subject]; !ok {
				order = append(order, e.Subject)
			}
			kind, subject, _ := strings.Cut(e.Subject, " ")
			raised[e.Subject] = decide.Alarm{Kind: kind, Subject: subject, Message: e.Reason}
		} else {
			delete(raised, e.Subject)
		}
	}
	for _, k := range order {
		if a, ok := raised[k]; ok {
			s.Alarms = append(s.Alarms, a)
			delete(raised, k)
		}
	}

	// Observers.
	suspected := map[string]bool{}
	for _, a := range s.Alarms {
		if a.Kind == decide.AlarmPartition {
			suspected[a.Subject] = true
		}
	}
	for name := range r.Observations {
		s.Observers = append(s.Observers, Observer{Name: name, Site: siteOf[name], Suspected: suspected[name]})
	}
	sort.Slice(s.Observers, func(i, j int) bool {
		a, b := s.Observers[i], s.Observers[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		return a.Name < b.Name
	})

	// Services and endpoints.
	siteUp, siteAll := map[string]int{}, map[string]int{}
	for _, svc := range t.Services {
		sv := Service{Name: svc.Name, Public: svc.Public, Description: svc.Description, Kind: svc.Kind, Tier: svc.Tier,
			Policy: svc.Policy, DNSName: svc.DNSName, Route: r.Routes[svc.Name], Endpoints: []Endpoint{}}
		routed := map[string]bool{}
		if sv.Route != nil {
			for _, tg := range sv.Route.Targets {
				routed[tg.ID] = true
			}
		}
		up, down := 0, 0
		for _, ep := range svc.Endpoints {
			id := ep.ID()
			e := Endpoint{ID: id, Site: ep.Site, Address: ep.Address, Port: ep.Port, Weight: ep.Weight, Capacity: ep.Capacity,
				State: StateUnknown, Routed: routed[id], Opinions: []Opinion{}}
			if v, ok := r.EndpointVerdicts[id]; ok {
				v := v
				e.Verdict = &v
				e.State = v.State
			}
			for _, o := range s.Observers {
				if ob, ok := r.Observations[o.Name][id]; ok {
					e.Opinions = append(e.Opinions, Opinion{Observer: o.Name, Site: o.Site, Up: ob.Up, Since: ob.Since, Detail: ob.Detail})
				}
			}
			switch e.State {
			case StateUp:
				up++
				siteUp[ep.Site]++
			case StateDown:
				down++
			}
			siteAll[ep.Site]++
			sv.Endpoints = append(sv.Endpoints, e)
		}
		sv.State = serviceState(len(svc.Endpoints), up, down, sv.Route)
		s.Services = append(s.Services, sv)
	}
	applyDependencies(t, s.Services)

	// Sites.
	for _, st := range t.Sites {
		site := Site{Name: st.Name, Role: st.Role, Region: st.Region, State: StateUnknown,
			Drained: drains[st.Name], EndpointsUp: siteUp[st.Name], Endpoints: siteAll[st.Name]}
		if v, ok := r.SiteVerdicts[st.Name]; ok {
			site.State, site.Since, site.Reason, site.Evacuated = v.State, v.Since, v.Reason, v.Evacuated
		}
		for _, n := range s.Nodes {
			if n.Site == st.Name {
				site.Nodes = append(site.Nodes, n.Name)
				if n.Alive {
					site.NodesAlive++
				}
			}
		}
		if site.State == StateUp && site.Endpoints > 0 && site.EndpointsUp < site.Endpoints {
			site.State = StateDegraded
		}
		s.Sites = append(s.Sites, site)
	}
	return s
}

func serviceState(n, up, down int, r *routing.Route) string {
	switch {
	case n == 0:
		return StateUnknown
	case down == n:
		return StateDown
	case r != nil && r.FailOpen:
		return StateDegraded
	case down > 0:
		return StateDegraded
	case up == n:
		return StateUp
	case up > 0:
		return StateUp
	}
	return StateUnknown
}

// applyDependencies makes service states dependency- and capacity-aware,
// so that the dashboard and the status page agree with what users get: a
// service is down when a hard dependency is down (whatever its own
// endpoints say), degraded when a hard dependency is degraded, a soft
// dependency is down, or the capacity it can serve (routed endpoints that
// are up) is below its peak. States only get worse, so repeating until
// nothing changes settles chains of dependencies (and ends on cycles).
// Dependencies on datastores are not judged here: the view has no
// datastore health.
func applyDependencies(t *topology.Topology, svcs []Service) {
	idx := make(map[string]int, len(svcs))
	for i := range svcs {
		idx[svcs[i].Name] = i
	}
	for i := range svcs {
		sv := &svcs[i]
		ts := t.Service(sv.Name)
		if ts == nil || sv.State == StateDown || sv.State == StateUnknown || ts.Peak <= 0 {
			continue
		}
		if c := servingCapacity(sv); c < ts.Peak {
			sv.State = StateDegraded
			sv.StateReason = fmt.Sprintf("capacity %d below peak %d", c, ts.Peak)
		}
	}
	for range len(svcs) + 1 {
		changed := false
		for i := range svcs {
			sv := &svcs[i]
			ts := t.Service(sv.Name)
			if ts == nil || sv.State == StateDown {
				continue
			}
			for _, d := range ts.DependsOn {
				j, ok := idx[d.Target]
				if !ok {
					continue
				}
				st, reason := dependencyEffect(d.Hard, svcs[j].State)
				if worse(st, sv.State) {
					sv.State = st
					sv.StateReason = reason + " " + d.Target + " is " + svcs[j].State
					changed = true
				}
			}
		}
		if !changed {
			return
		}
	}
}

// dependencyEffect is the state a dependency in state dep imposes on its
// dependant (StateUp: none).
func dependencyEffect(hard bool, dep string) (state, reason string) {
	switch {
	case hard && dep == StateDown:
		return StateDown, "hard dependency"
	case hard && dep == StateDegraded:
		return StateDegraded, "hard dependency"
	case !hard && dep == StateDown:
		return StateDegraded, "soft dependency"
	}
	return StateUp, ""
}

// worse reports whether state a is worse than b (unknown counts as up:
// a dependency does not make an unknown service known).
func worse(a, b string) bool {
	rank := func(s string) int {
		switch s {
		case StateDown:
			return 2
		case StateDegraded:
			return 1
		}
		return 0
	}
	return rank(a) > rank(b)
}

// servingCapacity is the capacity of the service's endpoints that are up
// and routed (all up endpoints before the leader wrote a route).
func servingCapacity(sv *Service) int {
	c := 0
	for _, e := range sv.Endpoints {
		if e.State == StateUp && (sv.Route == nil || e.Routed) {
			n := e.Capacity
			if n <= 0 {
				n = topology.DefaultCapacity
			}
			c += n
		}
	}
	return c
}
