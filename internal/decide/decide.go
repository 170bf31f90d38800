// Package decide is firebreak's leader-side judgement: from every live
// observer's observations it computes endpoint and site verdicts, routing per
// service and policy, and applies the safety rules of DESIGN.md (never zero
// endpoints, at most maxAutoEvacuatedSites evacuated by automation, hold-down
// dampening, no decision without quorum) and human overrides.
//
// The core is the pure function Engine.Step: observations, the live node
// set, overrides, the previous State and the time go in; the next State,
// history Events and current Alarms come out. Decider is the thin etcd layer
// that feeds Step from watches and writes its results with transactions; it
// must run only on the leader.
package decide

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// Verdict states.
const (
	Up   = "up"
	Down = "down"
)

// Event kinds in the history.
const (
	EventEndpoint = "endpoint" // an endpoint verdict changed
	EventSite     = "site"     // a site verdict changed
	EventRoute    = "route"    // a service's routing changed
	EventAlarm    = "alarm"    // an alarm was raised (To "raised") or cleared (To "cleared")
)

// Alarm kinds.
const (
	AlarmFailOpen        = "fail-open"         // every endpoint of a service is down; the last set is served
	AlarmEvacuationLimit = "evacuation-limit"  // a down site was not evacuated: maxAutoEvacuatedSites reached
	AlarmPartition       = "suspect-partition" // an observer sees everything outside its site down; its votes are discounted
	AlarmNoQuorum        = "no-quorum"         // too few live nodes; no decision is made
)

// Input is everything Step needs besides the previous state.
type Input struct {
	// Now is the decision time.
	Now time.Time
	// Live holds the names of nodes whose lease is alive.
	Live map[string]bool
	// Observations maps observer -> endpoint ID -> up. Ignored when Table
	// is set.
	Observations map[string]map[string]bool
	// Table holds the observations densely (see Engine.NewTable); it
	// replaces Observations when set.
	Table *Table
	// Overrides are all stored overrides; expired ones are ignored.
	Overrides []Override
	// Quorum is false when the caller cannot reach a store quorum; Step then
	// decides nothing.
	Quorum bool
}

// EndpointVerdict is the leader's conclusion about one endpoint.
type EndpointVerdict struct {
	ID    string    `json:"id"`
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// UpVotes, DownVotes and Voters count the live, undiscounted assigned
	// observers at the last decision.
	UpVotes   int `json:"upVotes"`
	DownVotes int `json:"downVotes"`
	Voters    int `json:"voters"`
}

// SiteVerdict is the leader's conclusion about one site.
type SiteVerdict struct {
	Site   string    `json:"site"`
	State  string    `json:"state"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
	// Evacuated is true when automation has taken the site out of routing.
	Evacuated bool `json:"evacuated,omitempty"`
}

// Alarm is a condition people must look at.
type Alarm struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Message string `json:"message"`
}

func (a Alarm) key() string { return a.Kind + "|" + a.Subject }

// Event is one entry of the append-only history.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// State is what the leader knows after a Step. Treat it as immutable: Step
// returns a new State and never modifies the previous one.
type State struct {
	Endpoints map[string]EndpointVerdict `json:"endpoints"`
	Sites     map[string]SiteVerdict     `json:"sites"`
	Routes    map[string]*routing.Route  `json:"routes"`
	// Evacuated lists the sites automation has evacuated, oldest first.
	Evacuated []string `json:"evacuated,omitempty"`
	// Alarms are the current alarms, sorted by kind and subject.
	Alarms []Alarm `json:"alarms,omitempty"`
	// Suspected lists observers whose votes are discounted.
	Suspected []string `json:"suspected,omitempty"`
	// NextWake is when a time-based rule (hold-down end, override start or
	// expiry) may change the outcome with no new input; zero for never.
	NextWake time.Time `json:"nextWake,omitzero"`
	// overrideSig is, per service, a signature of the active overrides that
	// touch it; a change of signature bypasses hold-down.
	overrideSig map[string]string
}

// Output is the result of one Step.
type Output struct {
	State  *State
	Events []Event
}

// Engine computes verdicts and routing for one topology. It is safe for
// concurrent use; its only mutable state is a cache of the last observer
// assignment (a pure function of the live node set).
type Engine struct {
	topo    *topology.Topology
	others  int
	eps     []*topology.Endpoint
	ids     []string // eps[i].ID()
	siteEps map[string][]*topology.Endpoint
	siteOf  map[string]string // node -> site
	idOf    map[*topology.Endpoint]string
	idxOf   map[*topology.Endpoint]int // index into eps/ids
	epIdx   map[string]int             // endpoint ID -> index
	nodeIdx map[string]int             // node name -> index in topo.Nodes
	epSite  []string                   // eps[i].Site

	mu       sync.Mutex
	assignOf string  // live-set key of assign
	assign   [][]int // observer node indexes per endpoint, aligned with ids
	forObs   [][]int // endpoint indexes per observer node index
}

// NewEngine returns an engine for t. others is how many sites besides an
// endpoint's own observe it (probe.DefaultOtherSites when <= 0); it must
// match the probers' setting.
func NewEngine(t *topology.Topology, others int) *Engine {
	e := &Engine{topo: t, others: others, eps: t.Endpoints(), siteOf: map[string]string{}, siteEps: map[string][]*topology.Endpoint{},
		idOf: map[*topology.Endpoint]string{}, idxOf: map[*topology.Endpoint]int{},
		epIdx: map[string]int{}, nodeIdx: map[string]int{}}
	for i, n := range t.Nodes {
		e.siteOf[n.Name] = n.Site
		e.nodeIdx[n.Name] = i
	}
	for _, ep := range e.eps {
		e.epIdx[ep.ID()] = len(e.ids)
		e.epSite = append(e.epSite, ep.Site)
		e.ids = append(e.ids, ep.ID())
		e.idOf[ep] = e.ids[len(e.ids)-1]
		e.idxOf[ep] = len(e.ids) - 1
		e.siteEps[ep.Site] = append(e.siteEps[ep.Site], ep)
	}
	return e
}

// assignment returns probe.Assign for the live set as a slice aligned with
// e.ids, cached.
func (e *Engine) assignment(live map[string]bool) ([][]int, [][]int) {
	var names []string
	for _, n := range e.topo.Nodes {
		if live[n.Name] {
			names = append(names, n.Name)
		}
	}
	key := strings.Join(names, "\x00")
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.assign == nil || e.assignOf != key {
		a := probe.Assign(e.topo, live, e.others)
		e.assign = make([][]int, len(e.ids))
		e.forObs = make([][]int, len(e.topo.Nodes))
		for i, id := range e.ids {
			for _, o := range a[id] {
				oi := e.nodeIdx[o]
				e.assign[i] = append(e.assign[i], oi)
				e.forObs[oi] = append(e.forObs[oi], i)
			}
		}
		e.assignOf = key
	}
	return e.assign, e.forObs
}

// Topology returns the engine's topology.
func (e *Engine) Topology() *topology.Topology { return e.topo }

// Step computes the next state. prev may be nil (first decision).
func (e *Engine) Step(prev *State, in Input) Output {
	if prev == nil {
		prev = &State{}
	}
	now := in.Now
	next := &State{
		Endpoints:   make(map[string]EndpointVerdict, len(e.eps)),
		Sites:       map[string]SiteVerdict{},
		Routes:      map[string]*routing.Route{},
		overrideSig: map[string]string{},
	}
	var events []Event

	// No decision without quorum: keep everything, raise one alarm.
	if !e.quorum(in) {
		copyState(next, prev)
		next.Alarms = []Alarm{{Kind: AlarmNoQuorum, Subject: "store", Message: "no quorum of live nodes or store; no decision is made"}}
		events = append(events, alarmEvents(now, prev.Alarms, next.Alarms)...)
		return Output{State: next, Events: events}
	}

	active := activeOverrides(in.Overrides, now)
	soon := func(t time.Time) {
		if t.After(now) && (next.NextWake.IsZero() || t.Before(next.NextWake)) {
			next.NextWake = t
		}
	}
	for _, o := range in.Overrides {
		if o.Validate() == nil {
			soon(o.Created)
			soon(o.Expires)
		}
	}
	assign, forObs := e.assignment(in.Live)
	tab := in.Table
	if tab == nil {
		tab = e.tableFrom(in.Observations)
	}
	liveIdx := make([]bool, len(e.topo.Nodes))
	for i, n := range e.topo.Nodes {
		liveIdx[i] = in.Live[n.Name]
	}
	downAt := make([]bool, len(e.eps))
	var alarms []Alarm

	// Partition suspicion.
	suspectIdx := e.suspects(tab, liveIdx, forObs)
	var suspected []string
	for oi, bad := range suspectIdx {
		if bad {
			suspected = append(suspected, e.topo.Nodes[oi].Name)
		}
	}
	sort.Strings(suspected)
	for _, o := range suspected {
		alarms = append(alarms, Alarm{Kind: AlarmPartition, Subject: o,
			Message: fmt.Sprintf("observer %s sees every endpoint outside site %s down while others see some up; its votes are discounted", o, e.siteOf[o])})
	}
	next.Suspected = suspected

	// Endpoint verdicts.
	for i := range e.eps {
		id := e.ids[i]
		pv, had := prev.Endpoints[id]
		if !had {
			pv = EndpointVerdict{ID: id, State: Up, Since: now}
		}
		v := EndpointVerdict{ID: id, State: pv.State, Since: pv.Since}
		for _, oi := range assign[i] {
			if !liveIdx[oi] || suspectIdx[oi] {
				continue
			}
			v.Voters++
			switch tab.v[oi][i] {
			case 1:
				v.UpVotes++
			case -1:
				v.DownVotes++
			}
		}
		switch {
		case v.DownVotes*2 > v.Voters:
			v.State = Down
		case v.UpVotes*2 > v.Voters:
			v.State = Up
		}
		if v.State != pv.State {
			v.Since = now
			if had || v.State == Down {
				events = append(events, Event{Time: now, Kind: EventEndpoint, Subject: id, From: pv.State, To: v.State,
					Reason: fmt.Sprintf("%d of %d observers say down, %d up", v.DownVotes, v.Voters, v.UpVotes)})
			}
		}
		next.Endpoints[id] = v
		downAt[i] = v.State == Down
	}

	// Site verdicts.
	siteEps := e.siteEps
	for _, s := range e.topo.Sites {
		sv := e.siteVerdict(s, siteEps[s.Name], downAt, in, tab, liveIdx, suspectIdx)
		pv, had := prev.Sites[s.Name]
		sv.Since = now
		if had && pv.State == sv.State {
			sv.Since = pv.Since
		}
		if (had && pv.State != sv.State) || (!had && sv.State == Down) {
			from := pv.State
			if !had {
				from = Up
			}
			events = append(events, Event{Time: now, Kind: EventSite, Subject: s.Name, From: from, To: sv.State, Reason: sv.Reason})
		}
		next.Sites[s.Name] = sv
	}

	// Evacuation, limited by maxAutoEvacuatedSites. Previously evacuated
	// sites that are still down keep their place; new ones come in name order.
	drained := map[string]bool{}
	for _, o := range active {
		if o.Kind == KindDrain {
			drained[o.Target] = true
		}
	}
	globalFreeze := false
	for _, o := range active {
		if o.Kind == KindFreeze && o.Target == "" {
			globalFreeze = true
		}
	}
	evacuated := map[string]bool{}
	refused := map[string]bool{}
	limit := e.topo.Decide.MaxAutoEvacuatedSites
	wantEvac := func(site string) bool {
		return next.Sites[site].State == Down && len(siteEps[site]) > 0 && !drained[site]
	}
	for _, s := range prev.Evacuated {
		if wantEvac(s) && len(next.Evacuated) < limit {
			next.Evacuated = append(next.Evacuated, s)
			evacuated[s] = true
		}
	}
	for _, s := range e.topo.Sites {
		if !wantEvac(s.Name) || evacuated[s.Name] {
			continue
		}
		if len(next.Evacuated) < limit && !globalFreeze {
			next.Evacuated = append(next.Evacuated, s.Name)
			evacuated[s.Name] = true
			continue
		}
		refused[s.Name] = true
		msg := fmt.Sprintf("site %s is down but %d site(s) are already evacuated (maxAutoEvacuatedSites %d); it stays in routing", s.Name, len(next.Evacuated), limit)
		if globalFreeze {
			msg = fmt.Sprintf("site %s is down but automation is frozen; it stays in routing", s.Name)
		}
		alarms = append(alarms, Alarm{Kind: AlarmEvacuationLimit, Subject: s.Name, Message: msg})
	}
	for s := range evacuated {
		sv := next.Sites[s]
		sv.Evacuated = true
		next.Sites[s] = sv
	}

	// Routing.
	forced := map[string]string{}
	for _, o := range active {
		switch o.Kind {
		case KindForceUp:
			forced[o.Target] = Up
		case KindForceDown:
			if forced[o.Target] == "" {
				forced[o.Target] = Down
			}
		}
	}
	for _, svc := range e.topo.Services {
		if len(svc.Endpoints) == 0 {
			continue
		}
		frozen := globalFreeze
		sig := []string{}
		var ovWhy []string
		for _, o := range active {
			switch {
			case o.Kind == KindFreeze && (o.Target == "" || o.Target == svc.Name),
				o.Kind == KindDrain && hasSite(svc, o.Target),
				(o.Kind == KindForceUp || o.Kind == KindForceDown) && strings.HasPrefix(o.Target, svc.Name+"/"):
				frozen = frozen || o.Kind == KindFreeze
				sig = append(sig, o.ID)
				ovWhy = append(ovWhy, fmt.Sprintf("override %s %s by %s: %s", o.Kind, orAllTargets(o.Target), o.Who, o.Why))
			}
		}
		sort.Strings(sig)
		next.overrideSig[svc.Name] = strings.Join(sig, ",")
		pr := prev.Routes[svc.Name]
		inPrev := map[string]bool{}
		if pr != nil {
			for _, t := range pr.Targets {
				inPrev[t.ID] = true
			}
		}
		var why []string
		healthy := func(ep *topology.Endpoint) bool {
			i := e.idxOf[ep]
			if len(forced) > 0 {
				switch forced[e.ids[i]] {
				case Up:
					return true
				case Down:
					return false
				}
			}
			if drained[ep.Site] {
				return false
			}
			if frozen && pr != nil {
				return inPrev[e.ids[i]]
			}
			if evacuated[ep.Site] {
				return false
			}
			if refused[ep.Site] {
				return true
			}
			return !downAt[i]
		}
		r := buildRoute(svc, e.topo, healthy)
		if len(r.Targets) == 0 {
			r.FailOpen = true
			if pr != nil && len(pr.Targets) > 0 {
				r.Targets = slices.Clone(pr.Targets)
				r.BySite = pr.BySite
			} else {
				r = buildRoute(svc, e.topo, func(*topology.Endpoint) bool { return true })
				r.FailOpen = true
			}
			alarms = append(alarms, Alarm{Kind: AlarmFailOpen, Subject: svc.Name,
				Message: fmt.Sprintf("every endpoint of %s is down or excluded; serving the last non-empty set", svc.Name)})
		}
		// Hold-down: within holdDown of the last change, removals wait;
		// additions (capacity restored) and override changes pass.
		if pr != nil && !sameTargets(pr.Targets, r.Targets) && !r.FailOpen &&
			prev.overrideSig[svc.Name] == next.overrideSig[svc.Name] &&
			now.Before(pr.UpdatedAt.Add(e.topo.Decide.HoldDown)) {
			merged := mergeTargets(svc, pr.Targets, r.Targets)
			if len(merged) != len(r.Targets) {
				soon(pr.UpdatedAt.Add(e.topo.Decide.HoldDown))
				r.Targets = merged
				r.BySite = mergeBySite(svc, pr.BySite, r.BySite)
				why = append(why, "hold-down: removals wait until "+pr.UpdatedAt.Add(e.topo.Decide.HoldDown).Format(time.RFC3339Nano))
			}
		}
		r.Service = svc.Name
		r.Policy = svc.Policy
		if pr != nil && routeEqual(pr, r) {
			next.Routes[svc.Name] = pr
			continue
		}
		r.UpdatedAt = now
		if pr != nil {
			r.Revision = pr.Revision + 1
		} else {
			r.Revision = 1
		}
		why = append(why, routeReason(svc, pr, r, next)...)
		if prev.overrideSig[svc.Name] != next.overrideSig[svc.Name] {
			why = append(why, ovWhy...)
		}
		r.Reason = strings.Join(why, "; ")
		next.Routes[svc.Name] = r
		events = append(events, Event{Time: now, Kind: EventRoute, Subject: svc.Name,
			From: targetIDs(pr), To: targetIDs(r), Reason: r.Reason})
	}

	sort.Slice(alarms, func(i, j int) bool { return alarms[i].key() < alarms[j].key() })
	next.Alarms = alarms
	events = append(events, alarmEvents(now, prev.Alarms, alarms)...)
	return Output{State: next, Events: events}
}

// quorum: the caller's store quorum, and more than half of the topology's
// nodes live (when the topology declares nodes).
func (e *Engine) quorum(in Input) bool {
	if !in.Quorum {
		return false
	}
	if len(e.topo.Nodes) == 0 {
		return true
	}
	live := 0
	for _, n := range e.topo.Nodes {
		if in.Live[n.Name] {
			live++
		}
	}
	return live*2 > len(e.topo.Nodes)
}

// suspects marks the live observers that see every endpoint outside their
// own site down (having at least one such opinion among the endpoints
// assigned to them) while another live observer in a different site sees
// at least one of those up.
func (e *Engine) suspects(tab *Table, live []bool, forObs [][]int) []bool {
	out := make([]bool, len(e.topo.Nodes))
	var outside []int
	for oi, n := range e.topo.Nodes {
		if !live[oi] {
			continue
		}
		outside = outside[:0]
		allDown := true
		for _, i := range forObs[oi] {
			if e.epSite[i] == n.Site || tab.v[oi][i] == 0 {
				continue
			}
			if tab.v[oi][i] > 0 {
				allDown = false
				break
			}
			outside = append(outside, i)
		}
		if !allDown || len(outside) == 0 {
			continue
		}
	contra:
		for pi, p := range e.topo.Nodes {
			if pi == oi || !live[pi] || p.Site == n.Site {
				continue
			}
			for _, i := range outside {
				if tab.v[pi][i] > 0 {
					out[oi] = true
					break contra
				}
			}
		}
	}
	return out
}

func (e *Engine) siteVerdict(s *topology.Site, eps []*topology.Endpoint, downAt []bool, in Input, tab *Table, live, suspect []bool) SiteVerdict {
	sv := SiteVerdict{Site: s.Name, State: Up}
	hasNodes, leaseGone := false, true
	for _, n := range e.topo.Nodes {
		if n.Site == s.Name {
			hasNodes = true
			if in.Live[n.Name] {
				leaseGone = false
			}
		}
	}
	leaseGone = leaseGone && hasNodes
	if len(eps) == 0 {
		if leaseGone {
			sv.State, sv.Reason = Down, "node lease expired"
		}
		return sv
	}
	allDown := true
	for _, ep := range eps {
		if !downAt[e.idxOf[ep]] {
			allDown = false
			break
		}
	}
	if allDown {
		sv.State, sv.Reason = Down, fmt.Sprintf("all %d endpoints down", len(eps))
		return sv
	}
	if !leaseGone {
		return sv
	}
	// The site's own node is gone: ask the remaining observers whether they
	// see its endpoints down.
	seeing, seeDown := 0, 0
	for oi, o := range e.topo.Nodes {
		if !live[oi] || suspect[oi] || o.Site == s.Name {
			continue
		}
		n, down := 0, 0
		for _, ep := range eps {
			switch tab.v[oi][e.idxOf[ep]] {
			case 1:
				n++
			case -1:
				n++
				down++
			}
		}
		if n == 0 {
			continue
		}
		seeing++
		if down == n {
			seeDown++
		}
	}
	if seeing > 0 && seeDown*2 > seeing {
		sv.State = Down
		sv.Reason = fmt.Sprintf("node lease expired and %d of %d remaining observers see its endpoints down", seeDown, seeing)
	}
	return sv
}

// buildRoute applies the service's policy to the endpoints healthy reports.
func buildRoute(svc *topology.Service, t *topology.Topology, healthy func(*topology.Endpoint) bool) *routing.Route {
	r := &routing.Route{Targets: []routing.Target{}}
	var ok []*topology.Endpoint
	for _, ep := range svc.Endpoints {
		if healthy(ep) {
			ok = append(ok, ep)
		}
	}
	switch svc.Policy {
	case topology.PolicyFailover:
		for _, site := range failoverOrder(svc) {
			for _, ep := range ok {
				if ep.Site == site {
					r.Targets = append(r.Targets, target(ep, ep.Weight))
				}
			}
			if len(r.Targets) > 0 {
				break
			}
		}
	case topology.PolicyWeighted:
		for _, ep := range ok {
			r.Targets = append(r.Targets, target(ep, ep.Weight))
		}
	case topology.PolicyNearest:
		for _, ep := range ok {
			r.Targets = append(r.Targets, target(ep, ep.Capacity))
		}
		if len(r.Targets) > 0 {
			r.BySite = map[string][]routing.Target{}
			for _, s := range t.Sites {
				var local []routing.Target
				for _, ep := range ok {
					if ep.Site == s.Name {
						local = append(local, target(ep, ep.Capacity))
					}
				}
				if len(local) == 0 {
					local = slices.Clone(r.Targets)
				}
				r.BySite[s.Name] = local
			}
		}
	default: // active-active
		for _, ep := range ok {
			r.Targets = append(r.Targets, target(ep, ep.Capacity))
		}
	}
	return r
}

func orAllTargets(t string) string {
	if t == "" {
		return "all services"
	}
	return t
}

func failoverOrder(svc *topology.Service) []string {
	order := slices.Clone(svc.Failover)
	for _, ep := range svc.Endpoints {
		if !slices.Contains(order, ep.Site) {
			order = append(order, ep.Site)
		}
	}
	return order
}

func target(ep *topology.Endpoint, w int) routing.Target {
	return routing.Target{ID: ep.ID(), Site: ep.Site, Address: ep.Address, Port: ep.Port, Weight: w}
}

func hasSite(svc *topology.Service, site string) bool {
	for _, ep := range svc.Endpoints {
		if ep.Site == site {
			return true
		}
	}
	return false
}

func sameTargets(a, b []routing.Target) bool {
	return slices.Equal(a, b)
}

func routeEqual(a, b *routing.Route) bool {
	if a.FailOpen != b.FailOpen || a.Policy != b.Policy || !sameTargets(a.Targets, b.Targets) || len(a.BySite) != len(b.BySite) {
		return false
	}
	for k, v := range a.BySite {
		if !sameTargets(v, b.BySite[k]) {
			return false
		}
	}
	return true
}

// mergeTargets returns the union of old and cur in the service's endpoint
// order (cur's weights win).
func mergeTargets(svc *topology.Service, old, cur []routing.Target) []routing.Target {
	by := map[string]routing.Target{}
	for _, t := range old {
		by[t.ID] = t
	}
	for _, t := range cur {
		by[t.ID] = t
	}
	out := make([]routing.Target, 0, len(by))
	for _, ep := range svc.Endpoints {
		if t, ok := by[ep.ID()]; ok {
			out = append(out, t)
		}
	}
	return out
}

func mergeBySite(svc *topology.Service, old, cur map[string][]routing.Target) map[string][]routing.Target {
	if old == nil && cur == nil {
		return nil
	}
	out := map[string][]routing.Target{}
	for k, v := range cur {
		out[k] = mergeTargets(svc, old[k], v)
	}
	for k, v := range old {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func targetIDs(r *routing.Route) string {
	if r == nil {
		return ""
	}
	ids := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		ids[i] = t.ID
	}
	s := strings.Join(ids, ",")
	if r.FailOpen {
		s += " (fail-open)"
	}
	return s
}

func routeReason(svc *topology.Service, pr, r *routing.Route, st *State) []string {
	if pr == nil {
		return []string{"initial routing"}
	}
	var why []string
	for _, s := range st.Evacuated {
		if hasSite(svc, s) {
			why = append(why, "site "+s+" evacuated")
		}
	}
	in := map[string]bool{}
	for _, t := range r.Targets {
		in[t.ID] = true
	}
	for _, t := range pr.Targets {
		if !in[t.ID] {
			why = append(why, "removed "+t.ID+" ("+st.Endpoints[t.ID].State+")")
		}
		delete(in, t.ID)
	}
	for _, t := range r.Targets {
		if in[t.ID] {
			why = append(why, "added "+t.ID)
		}
	}
	if r.FailOpen {
		why = append(why, "fail-open")
	}
	return why
}

func activeOverrides(all []Override, now time.Time) []Override {
	var out []Override
	for _, o := range all {
		if o.Active(now) && o.Validate() == nil {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func alarmEvents(now time.Time, prev, cur []Alarm) []Event {
	var out []Event
	was := map[string]bool{}
	for _, a := range prev {
		was[a.key()] = true
	}
	is := map[string]bool{}
	for _, a := range cur {
		is[a.key()] = true
		if !was[a.key()] {
			out = append(out, Event{Time: now, Kind: EventAlarm, Subject: a.Kind + " " + a.Subject, To: "raised", Reason: a.Message})
		}
	}
	for _, a := range prev {
		if !is[a.key()] {
			out = append(out, Event{Time: now, Kind: EventAlarm, Subject: a.Kind + " " + a.Subject, To: "cleared"})
		}
	}
	return out
}

// copyState copies prev's verdicts and routes into next (no decision).
func copyState(next, prev *State) {
	for k, v := range prev.Endpoints {
		next.Endpoints[k] = v
	}
	for k, v := range prev.Sites {
		next.Sites[k] = v
	}
	for k, v := range prev.Routes {
		next.Routes[k] = v
	}
	for k, v := range prev.overrideSig {
		next.overrideSig[k] = v
	}
	next.Evacuated = slices.Clone(prev.Evacuated)
	next.Suspected = slices.Clone(prev.Suspected)
}
