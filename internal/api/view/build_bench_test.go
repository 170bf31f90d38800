package view

import (
	"fmt"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// bigRaw is a control plane with services × 3 endpoints in 3 sites, each
// endpoint watched by the 2 observers of the other sites, and history
// events.
func bigRaw(services, events int) *Raw {
	now := time.Now()
	t := &topology.Topology{}
	sites := []string{"a", "b", "c"}
	r := &Raw{Now: now, Topology: t, EndpointVerdicts: map[string]decide.EndpointVerdict{}, SiteVerdicts: map[string]decide.SiteVerdict{},
		Routes: map[string]*routing.Route{}, Observations: map[string]map[string]probe.Observation{}, Live: map[string]NodeInfo{}}
	for _, s := range sites {
		t.Sites = append(t.Sites, &topology.Site{Name: s, Role: topology.RoleDatacenter})
		n := "fb-" + s
		t.Nodes = append(t.Nodes, &topology.Node{Name: n, Site: s})
		r.Live[n] = NodeInfo{Name: n, Site: s}
		r.Observations[n] = map[string]probe.Observation{}
		r.SiteVerdicts[s] = decide.SiteVerdict{Site: s, State: decide.Up}
	}
	for i := range services {
		svc := &topology.Service{Name: fmt.Sprintf("svc%05d", i), Policy: topology.PolicyActiveActive}
		route := &routing.Route{Service: svc.Name, Revision: 1}
		for j, s := range sites {
			ep := &topology.Endpoint{Service: svc.Name, Site: s, Address: fmt.Sprintf("10.%d.%d.%d", j, i/250, i%250), Port: 443, Weight: 1, Capacity: 1}
			svc.Endpoints = append(svc.Endpoints, ep)
			r.EndpointVerdicts[ep.ID()] = decide.EndpointVerdict{ID: ep.ID(), State: decide.Up, Voters: 2, UpVotes: 2}
			route.Targets = append(route.Targets, routing.Target{ID: ep.ID(), Site: s, Address: ep.Address, Port: 443})
			for _, o := range sites {
				if o != s {
					r.Observations["fb-"+o][ep.ID()] = probe.Observation{Observer: "fb-" + o, Endpoint: ep.ID(), Up: true}
				}
			}
		}
		t.Services = append(t.Services, svc)
		r.Routes[svc.Name] = route
	}
	t.Index()
	for i := range events {
		r.History = append(r.History, decide.Event{Time: now.Add(time.Duration(i-events) * time.Minute), Kind: decide.EventEndpoint,
			Subject: t.Services[i%services].Endpoints[0].ID(), From: decide.Up, To: decide.Down})
	}
	return r
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000} {
		raw := bigRaw(n, 1000)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Build(raw)
			}
		})
	}
}

func BenchmarkIncidentsAndUptime90d(b *testing.B) {
	raw := bigRaw(1000, 0)
	s := Build(raw)
	now := time.Now()
	since := now.AddDate(0, 0, -90)
	var evs []decide.Event
	for i := range 20000 { // 20,000 verdict changes over 90 days
		id := s.Services[i%1000].Endpoints[0].ID
		to := decide.Down
		if (i/1000)%2 == 1 {
			to = decide.Up
		}
		evs = append(evs, decide.Event{Time: since.Add(time.Duration(i) * 90 * 24 * time.Hour / 20000), Kind: decide.EventEndpoint, Subject: id, To: to})
	}
	b.ReportAllocs()
	for b.Loop() {
		Incidents(s.Services, evs, since, now, nil)
		Uptime(s.Services, evs, since, now, 90)
	}
}
