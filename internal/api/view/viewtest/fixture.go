// Package viewtest provides Fixture, an in-memory view.State and
// view.Actions for tests of the API and UI (and anything else that needs a
// control plane without a store). It is a testing helper: production code
// uses api.Etcd.
package viewtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// Fixture is an in-memory control plane. It is safe for concurrent use.
type Fixture struct {
	mu    sync.Mutex
	raw   view.Raw
	rev   int64
	subs  map[chan view.Event]struct{}
	audit []view.AuditRecord
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a fixture for t where every endpoint is up, seen up by every
// node of another site, every site up, routing includes every endpoint,
// every node is alive and the first node leads.
func New(t *topology.Topology, node string) *Fixture {
	now := time.Now().UTC()
	f := &Fixture{Now: time.Now, subs: map[chan view.Event]struct{}{}}
	r := &f.raw
	r.Node, r.Topology, r.TopologyRev = node, t, 1
	r.EndpointVerdicts = map[string]decide.EndpointVerdict{}
	r.SiteVerdicts = map[string]decide.SiteVerdict{}
	r.Routes = map[string]*routing.Route{}
	r.Observations = map[string]map[string]probe.Observation{}
	r.Overrides = map[string]decide.Override{}
	r.Live = map[string]view.NodeInfo{}
	r.Store = view.StoreHealth{Quorum: true, LastOK: now}
	for _, n := range t.Nodes {
		r.Live[n.Name] = view.NodeInfo{Name: n.Name, Site: n.Site, API: n.API, DNS: n.DNS, Version: "test", Started: now}
		r.Store.Members = append(r.Store.Members, view.Member{Name: n.Name, ID: fmt.Sprintf("%x", len(r.Store.Members)+1), Reachable: true, DBSize: 1 << 20})
		r.Observations[n.Name] = map[string]probe.Observation{}
	}
	if len(t.Nodes) > 0 {
		r.Leader = t.Nodes[0].Name
		r.Store.Members[0].RaftLeader = true
	}
	for _, ep := range t.Endpoints() {
		v := decide.EndpointVerdict{ID: ep.ID(), State: decide.Up, Since: now}
		for _, n := range t.Nodes {
			if n.Site != ep.Site {
				r.Observations[n.Name][ep.ID()] = probe.Observation{Observer: n.Name, Endpoint: ep.ID(), Up: true, Since: now}
				v.UpVotes++
				v.Voters++
			}
		}
		r.EndpointVerdicts[ep.ID()] = v
	}
	for _, s := range t.Sites {
		r.SiteVerdicts[s.Name] = decide.SiteVerdict{Site: s.Name, State: decide.Up, Since: now}
	}
	f.reroute(now)
	return f
}

// reroute recomputes every route from the endpoint verdicts and drains and
// returns routing events for the routes that changed.
func (f *Fixture) reroute(now time.Time) []view.Event {
	var evs []view.Event
	r := &f.raw
	drained := map[string]bool{}
	for _, o := range r.Overrides {
		if o.Kind == decide.KindDrain && o.Active(now) {
			drained[o.Target] = true
		}
	}
	for _, svc := range r.Topology.Services {
		route := &routing.Route{Service: svc.Name, Policy: svc.Policy, Targets: []routing.Target{}, UpdatedAt: now}
		var all []routing.Target
		for _, ep := range svc.Endpoints {
			t := routing.Target{ID: ep.ID(), Site: ep.Site, Address: ep.Address, Port: ep.Port, Weight: ep.Capacity}
			all = append(all, t)
			if r.EndpointVerdicts[ep.ID()].State == decide.Up && !drained[ep.Site] {
				route.Targets = append(route.Targets, t)
			}
		}
		if len(route.Targets) == 0 {
			route.Targets, route.FailOpen = all, true
		}
		prev := r.Routes[svc.Name]
		if prev != nil && slices.Equal(prev.Targets, route.Targets) && prev.FailOpen == route.FailOpen {
			continue
		}
		f.rev++
		route.Revision = f.rev
		route.Reason = "fixture"
		r.Routes[svc.Name] = route
		b, _ := json.Marshal(route)
		evs = append(evs, view.Event{Kind: view.KindRouting, Key: svc.Name, Revision: f.rev, Data: b})
		if prev != nil {
			r.History = append(r.History, decide.Event{Time: now, Kind: decide.EventRoute, Subject: svc.Name, Reason: "fixture reroute"})
		}
	}
	return evs
}

// Update changes the raw state under the lock, recomputes routing, and
// announces an event of kind to subscribers.
func (f *Fixture) Update(kind, key string, fn func(r *view.Raw)) {
	f.mu.Lock()
	fn(&f.raw)
	routed := f.reroute(f.Now().UTC())
	f.rev++
	ev := view.Event{Kind: kind, Key: key, Revision: f.rev}
	f.mu.Unlock()
	f.publish(ev)
	for _, r := range routed {
		f.publish(r)
	}
}

// SetSite marks every endpoint of site up or down (verdicts, observations
// of every other observer, site verdict, history) as the leader would.
func (f *Fixture) SetSite(site string, up bool) {
	now := f.Now().UTC()
	state, from := decide.Down, decide.Up
	if up {
		state, from = decide.Up, decide.Down
	}
	f.Update(view.KindVerdict, site, func(r *view.Raw) {
		for _, ep := range r.Topology.Endpoints() {
			if ep.Site != site {
				continue
			}
			id := ep.ID()
			if r.EndpointVerdicts[id].State != state {
				r.History = append(r.History, decide.Event{Time: now, Kind: decide.EventEndpoint, Subject: id, From: from, To: state, Reason: "fixture"})
			}
			v := decide.EndpointVerdict{ID: id, State: state, Since: now}
			for obs, m := range r.Observations {
				if _, ok := m[id]; ok {
					detail := ""
					if !up {
						detail = "dial tcp " + ep.Address + ": connect: connection refused"
					}
					m[id] = probe.Observation{Observer: obs, Endpoint: id, Up: up, Since: now, Detail: detail}
					v.Voters++
					if up {
						v.UpVotes++
					} else {
						v.DownVotes++
					}
				}
			}
			r.EndpointVerdicts[id] = v
		}
		sv := decide.SiteVerdict{Site: site, State: state, Since: now, Evacuated: !up}
		if !up {
			sv.Reason = "all endpoints down"
		}
		if r.SiteVerdicts[site].State != state {
			r.History = append(r.History, decide.Event{Time: now, Kind: decide.EventSite, Subject: site, From: from, To: state, Reason: sv.Reason})
		}
		r.SiteVerdicts[site] = sv
		for _, n := range r.Topology.Nodes {
			if n.Site == site {
				if up {
					r.Live[n.Name] = view.NodeInfo{Name: n.Name, Site: n.Site, API: n.API, Started: now}
				} else {
					delete(r.Live, n.Name)
					delete(r.Observations, n.Name)
				}
			}
		}
		if _, alive := r.Live[r.Leader]; !alive { // a new leader is elected
			r.Leader = ""
			for _, n := range r.Topology.Nodes {
				if _, ok := r.Live[n.Name]; ok {
					r.Leader = n.Name
					break
				}
			}
		}
	})
}

// AddHistory appends events to the history (they need not be recent).
func (f *Fixture) AddHistory(evs ...decide.Event) {
	f.Update(view.KindHistory, "", func(r *view.Raw) {
		r.History = append(r.History, evs...)
		slices.SortStableFunc(r.History, func(a, b decide.Event) int { return a.Time.Compare(b.Time) })
	})
}

// SetStale marks the node as without quorum since since (or back).
func (f *Fixture) SetStale(stale bool, since time.Time) {
	f.Update(view.KindStore, "quorum", func(r *view.Raw) {
		r.Stale, r.StaleSince = stale, since
		r.Store.Quorum = !stale
		if stale {
			r.StaleReason = "fixture: no quorum"
		} else {
			r.StaleReason = ""
		}
	})
}

// AuditLog returns a copy of the audit records written so far.
func (f *Fixture) AuditLog() []view.AuditRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.audit)
}

func (f *Fixture) publish(ev view.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Snapshot implements view.State.
func (f *Fixture) Snapshot(ctx context.Context) (*view.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := f.raw
	raw.Now = f.Now().UTC()
	raw.Revision = f.rev
	return view.Build(&raw), nil
}

// History implements view.State.
func (f *Fixture) History(ctx context.Context, since time.Time) ([]decide.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []decide.Event
	for _, e := range f.raw.History {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Subscribe implements view.State.
func (f *Fixture) Subscribe(ctx context.Context) <-chan view.Event {
	ch := make(chan view.Event, 64)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch)
		f.mu.Unlock()
	}()
	return ch
}

func (f *Fixture) record(c view.Change, action, target string, detail any) {
	f.audit = append(f.audit, view.AuditRecord{Time: f.Now().UTC(), Who: c.Who, Role: c.Role, Action: action, Subject: target, Reason: c.Why, Via: c.Via, Remote: c.Remote, Detail: detail})
}

// Drain implements view.Actions.
func (f *Fixture) Drain(ctx context.Context, c view.Change, site string, ttl time.Duration) (view.Override, error) {
	now := f.Now().UTC()
	return f.SetOverride(ctx, c, decide.Override{ID: fmt.Sprintf("drain-%s-%d", site, now.UnixNano()), Kind: decide.KindDrain, Target: site, Created: now, Expires: now.Add(ttl)})
}

// SetOverride implements view.Actions.
func (f *Fixture) SetOverride(ctx context.Context, c view.Change, o decide.Override) (view.Override, error) {
	now := f.Now().UTC()
	if o.Created.IsZero() {
		o.Created = now
	}
	if o.ID == "" {
		o.ID = fmt.Sprintf("%s-%d", o.Kind, now.UnixNano())
	}
	if o.Who == "" {
		o.Who = c.Who
	}
	if o.Why == "" {
		o.Why = c.Why
	}
	if err := o.Validate(); err != nil {
		return view.Override{}, fmt.Errorf("%w: %v", view.ErrInvalid, err)
	}
	f.mu.Lock()
	if o.Kind == decide.KindDrain && f.raw.Topology.Site(o.Target) == nil {
		f.mu.Unlock()
		return view.Override{}, fmt.Errorf("site %q: %w", o.Target, view.ErrNotFound)
	}
	f.mu.Unlock()
	f.Update(view.KindOverride, o.ID, func(r *view.Raw) { r.Overrides[o.ID] = o })
	f.mu.Lock()
	f.record(c, "override.create", o.Target, o)
	f.mu.Unlock()
	return view.Override{Override: o, Active: o.Active(now)}, nil
}

// Undrain implements view.Actions.
func (f *Fixture) Undrain(ctx context.Context, c view.Change, site string) ([]view.Override, error) {
	now := f.Now().UTC()
	var ended []view.Override
	f.Update(view.KindOverride, site, func(r *view.Raw) {
		for id, o := range r.Overrides {
			if o.Kind == decide.KindDrain && o.Target == site && o.Active(now) {
				o.Expires = now
				r.Overrides[id] = o
				ended = append(ended, view.Override{Override: o})
			}
		}
	})
	if len(ended) == 0 {
		return nil, fmt.Errorf("site %q has no active drain: %w", site, view.ErrNotFound)
	}
	f.mu.Lock()
	f.record(c, "undrain", site, ended)
	f.mu.Unlock()
	return ended, nil
}

// ExpireOverride implements view.Actions.
func (f *Fixture) ExpireOverride(ctx context.Context, c view.Change, id string) (view.Override, error) {
	now := f.Now().UTC()
	var out *view.Override
	f.Update(view.KindOverride, id, func(r *view.Raw) {
		if o, ok := r.Overrides[id]; ok {
			if o.Active(now) {
				o.Expires = now
				r.Overrides[id] = o
			}
			out = &view.Override{Override: o}
		}
	})
	if out == nil {
		return view.Override{}, fmt.Errorf("override %q: %w", id, view.ErrNotFound)
	}
	f.mu.Lock()
	f.record(c, "override.expire", id, out.Override)
	f.mu.Unlock()
	return *out, nil
}

// Audit implements view.Actions.
func (f *Fixture) Audit(ctx context.Context, since time.Time, limit int) ([]view.AuditRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []view.AuditRecord
	for _, a := range f.audit {
		if !a.Time.Before(since) && (limit == 0 || len(out) < limit) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Sample is a small three-site topology (two data centers and a witness,
// three services, one public) for tests and screenshots.
const Sample = `name: example
sites:
  pangyo: {role: datacenter, region: seongnam}
  ansan: {role: datacenter, region: ansan}
  chuncheon: {role: witness}
nodes:
  - {name: fb-pangyo, site: pangyo, api: "127.0.0.1:1"}
  - {name: fb-ansan, site: ansan, api: "127.0.0.1:2"}
  - {name: fb-chuncheon, site: chuncheon, api: "127.0.0.1:3"}
dns:
  zone: svc.example.com.
services:
  login:
    tier: 0
    public: Login
    description: Sign-in for every app
    endpoints:
      - {site: pangyo, address: 10.1.0.10, port: 443}
      - {site: ansan, address: 10.2.0.10, port: 443}
  talk:
    tier: 0
    public: Messaging
    policy: failover
    endpoints:
      - {site: pangyo, address: 10.1.0.20, port: 443}
      - {site: ansan, address: 10.2.0.20, port: 443}
  deploy:
    kind: ops
    tier: 1
    endpoints:
      - {site: pangyo, address: 10.1.0.30, port: 22}
      - {site: ansan, address: 10.2.0.30, port: 22}
`

// SampleTopology parses Sample.
func SampleTopology() *topology.Topology {
	t, err := topology.Parse("viewtest.Sample", []byte(Sample))
	if err != nil {
		panic("viewtest: sample topology: " + err.Error())
	}
	return t
}

// Interface guards.
var (
	_ view.State   = (*Fixture)(nil)
	_ view.Actions = (*Fixture)(nil)
)
