package runbook

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/topology"
)

// Options are a run's settings beyond the runbook file.
type Options struct {
	// Only restricts the run to targets matching every key=value filter
	// (keys: site, rack, role, kind, name, label.KEY); the same key given
	// twice matches either value.
	Only []string
	// MaxParallel, when more than zero, replaces the global limit.
	MaxParallel int
}

// Plan is a runbook resolved against its inventory and topology: every
// (step, target) pair as an item, the per-target waits between them, and the
// concurrency limits each item's action is subject to.
type Plan struct {
	Runbook *Runbook
	Steps   []PlanStep
	Targets []*driver.Target
	// Limiters are the concurrency limits, by key ("global",
	// "site:ansan", "rack:ansan/r01", "driver:redfish", "step:2", ...).
	Limiters []Limiter

	items   []item
	groups  []group
	buckets []bucketDef
}

// PlanStep is a step with its items.
type PlanStep struct {
	Step  *Step
	Items []int32
}

// Limiter is one concurrency limit.
type Limiter struct {
	Key string
	Cap int
}

type item struct {
	step, target int32
	prio         int32 // lower runs first: tier, then step order
	bucket       int32
	waits        []int32 // groups this item waits for
	memberOf     []int32 // groups this item counts toward
}

// group is a set of items (the members) that other items (the waiters)
// wait for: the targets of a dependency step within a scope.
type group struct {
	members int32
	waiters []int32
}

// bucketDef is the set of items sharing exactly the same limiters: one
// step, one site, one rack.
type bucketDef struct {
	limiters []int32
}

// Items returns how many (step, target) items the plan has.
func (p *Plan) Items() int { return len(p.items) }

// ItemStep and ItemTarget return an item's step index and target.
func (p *Plan) ItemStep(i int) int              { return int(p.items[i].step) }
func (p *Plan) ItemTarget(i int) *driver.Target { return p.Targets[p.items[i].target] }

// NewPlan resolves rb's targets and builds the item graph. drivers, when not
// nil, is checked for every driver and operation the steps name.
func NewPlan(rb *Runbook, opts Options, drivers driver.Registry) (*Plan, error) {
	only, err := parseOnly(opts.Only)
	if err != nil {
		return nil, err
	}
	if drivers != nil {
		if err := checkDrivers(rb, drivers); err != nil {
			return nil, err
		}
	}
	p := &Plan{Runbook: rb}
	targetIdx := map[string]int32{}
	tiers := map[int32]int{}
	addTarget := func(t *driver.Target, tier int) int32 {
		if i, ok := targetIdx[t.Name]; ok {
			return i
		}
		i := int32(len(p.Targets))
		p.Targets = append(p.Targets, t)
		targetIdx[t.Name] = i
		tiers[i] = tier
		return i
	}
	// Items per step, and an index (step, target) -> item.
	itemOf := map[[2]int32]int32{}
	for si, s := range rb.Steps {
		ps := PlanStep{Step: s}
		for _, st := range selectTargets(rb, s.Targets) {
			if !only.match(st.t) {
				continue
			}
			ti := addTarget(st.t, st.tier)
			if _, dup := itemOf[[2]int32{int32(si), ti}]; dup {
				continue
			}
			id := int32(len(p.items))
			p.items = append(p.items, item{step: int32(si), target: ti, prio: int32(tiers[ti]*len(rb.Steps) + si)})
			itemOf[[2]int32{int32(si), ti}] = id
			ps.Items = append(ps.Items, id)
		}
		p.Steps = append(p.Steps, ps)
	}
	stepIdx := map[string]int{}
	for i, s := range rb.Steps {
		stepIdx[s.Name] = i
	}
	// Waits on dependency steps: create the groups from the waiters' side,
	// then count the dependency step's items into them.
	groupIdx := map[string]int32{}
	getGroup := func(key string) int32 {
		g, ok := groupIdx[key]
		if !ok {
			g = int32(len(p.groups))
			p.groups = append(p.groups, group{})
			groupIdx[key] = g
		}
		return g
	}
	scopesOf := make([]map[string]bool, len(rb.Steps))
	for si, s := range rb.Steps {
		for _, dep := range s.DependsOn {
			j := stepIdx[dep.Step]
			if scopesOf[j] == nil {
				scopesOf[j] = map[string]bool{}
			}
			scopesOf[j][dep.Scope] = true
			for _, id := range p.Steps[si].Items {
				t := p.Targets[p.items[id].target]
				g := getGroup(groupKey(j, dep.Scope, t))
				p.items[id].waits = append(p.items[id].waits, g)
			}
		}
	}
	for j := range rb.Steps {
		for scope := range scopesOf[j] {
			for _, id := range p.Steps[j].Items {
				t := p.Targets[p.items[id].target]
				if g, ok := groupIdx[groupKey(j, scope, t)]; ok {
					p.items[id].memberOf = append(p.items[id].memberOf, g)
					p.groups[g].members++
				}
			}
		}
	}
	// Topology order between a step's own service and datastore targets.
	if t := rb.Topology; t != nil {
		for si, s := range rb.Steps {
			if !s.Order {
				continue
			}
			for _, id := range p.Steps[si].Items {
				tg := p.Targets[p.items[id].target]
				if tg.Kind == driver.KindServer {
					continue
				}
				base, _, _ := strings.Cut(tg.Name, "@")
				seen := map[string]bool{base: true}
				var walk func(name string)
				walk = func(name string) {
					for _, dn := range topoDeps(t, name) {
						if seen[dn] {
							continue
						}
						seen[dn] = true
						other, ok := targetIdx[dn+"@"+tg.Site]
						var dep int32 = -1
						if ok {
							if d, ok := itemOf[[2]int32{int32(si), other}]; ok {
								dep = d
							}
						}
						if dep < 0 {
							walk(dn)
							continue
						}
						g := getGroup(fmt.Sprintf("self\x00%d\x00%d", si, dep))
						if p.groups[g].members == 0 {
							p.groups[g].members = 1
							p.items[dep].memberOf = append(p.items[dep].memberOf, g)
						}
						p.items[id].waits = append(p.items[id].waits, g)
					}
				}
				walk(base)
			}
		}
	}
	// Keep only waits on groups that have members, and record the waiters.
	for i := range p.items {
		it := &p.items[i]
		kept := it.waits[:0]
		for _, g := range it.waits {
			if p.groups[g].members > 0 {
				kept = append(kept, g)
				p.groups[g].waiters = append(p.groups[g].waiters, int32(i))
			}
		}
		it.waits = kept
	}
	p.limiters(opts)
	return p, nil
}

func groupKey(step int, scope string, t *driver.Target) string {
	switch scope {
	case ScopeTarget:
		return fmt.Sprintf("%d\x00t\x00%s", step, t.Name)
	case ScopeRack:
		return fmt.Sprintf("%d\x00r\x00%s/%s", step, t.Site, t.Rack)
	case ScopeSite:
		return fmt.Sprintf("%d\x00s\x00%s", step, t.Site)
	}
	return fmt.Sprintf("%d\x00a", step)
}

func (p *Plan) limiters(opts Options) {
	rb := p.Runbook
	idx := map[string]int32{}
	lim := func(key string, cap int) int32 {
		if i, ok := idx[key]; ok {
			return i
		}
		i := int32(len(p.Limiters))
		p.Limiters = append(p.Limiters, Limiter{Key: key, Cap: cap})
		idx[key] = i
		return i
	}
	global := rb.Limits.Global
	if opts.MaxParallel > 0 {
		global = opts.MaxParallel
	}
	bidx := map[string]int32{}
	for i := range p.items {
		it := &p.items[i]
		s := rb.Steps[it.step]
		t := p.Targets[it.target]
		key := fmt.Sprintf("%d\x00%s\x00%s", it.step, t.Site, t.Rack)
		b, ok := bidx[key]
		if !ok {
			var ls []int32
			ls = append(ls, lim("global", global))
			if c := rb.Limits.PerDriver[s.Action.Driver]; c > 0 {
				ls = append(ls, lim("driver:"+s.Action.Driver, c))
			}
			if c := rb.Limits.PerSite; c > 0 {
				ls = append(ls, lim("site:"+t.Site, c))
			}
			if c := rb.Limits.PerRack; c > 0 && t.Rack != "" {
				ls = append(ls, lim("rack:"+t.Site+"/"+t.Rack, c))
			}
			if c := s.Limits.Parallel; c > 0 {
				ls = append(ls, lim("step:"+s.Name, c))
			}
			if c := s.Limits.PerSite; c > 0 {
				ls = append(ls, lim("step:"+s.Name+"/site:"+t.Site, c))
			}
			if c := s.Limits.PerRack; c > 0 && t.Rack != "" {
				ls = append(ls, lim("step:"+s.Name+"/rack:"+t.Site+"/"+t.Rack, c))
			}
			b = int32(len(p.buckets))
			p.buckets = append(p.buckets, bucketDef{limiters: ls})
			bidx[key] = b
		}
		it.bucket = b
	}
}

// topoDeps returns the names of the services and datastores that the
// service name depends on (hard or soft); datastores depend on nothing.
func topoDeps(t *topology.Topology, name string) []string {
	svc := t.Service(name)
	if svc == nil {
		return nil
	}
	out := make([]string, 0, len(svc.DependsOn))
	for _, d := range svc.DependsOn {
		out = append(out, d.Target)
	}
	return out
}

type selected struct {
	t    *driver.Target
	tier int
}

func selectTargets(rb *Runbook, sel Selector) []selected {
	var out []selected
	if s := sel.Servers; s != nil {
		for _, sv := range rb.Servers {
			if slices.Contains(s.Exclude, sv.Name) || !anyOf(s.Names, sv.Name) || !anyOf(s.Sites, sv.Site) || !anyOf(s.Racks, sv.Rack) || !anyOf(s.Roles, sv.Role) {
				continue
			}
			ok := true
			for k, v := range s.Labels {
				if sv.Labels[k] != v {
					ok = false
				}
			}
			if !ok {
				continue
			}
			out = append(out, selected{&driver.Target{Kind: driver.KindServer, Name: sv.Name, Site: sv.Site, Rack: sv.Rack,
				Role: sv.Role, Labels: sv.Labels, BMC: sv.BMC, SSH: sv.SSH}, sv.Tier})
		}
	}
	t := rb.Topology
	if s := sel.Services; s != nil && t != nil {
		for _, svc := range t.Services {
			if slices.Contains(s.Exclude, svc.Name) || !anyOf(s.Names, svc.Name) || !anyOf(s.Kinds, svc.Kind) || !anyInt(s.Tiers, svc.Tier) {
				continue
			}
			seen := map[string]bool{}
			for _, ep := range svc.Endpoints {
				if seen[ep.Site] || !anyOf(s.Sites, ep.Site) {
					continue
				}
				seen[ep.Site] = true
				out = append(out, selected{&driver.Target{Kind: driver.KindService, Name: svc.Name + "@" + ep.Site, Site: ep.Site,
					Rack: ep.Rack, Address: ep.Address, Port: ep.Port}, svc.Tier})
			}
		}
	}
	if s := sel.Datastores; s != nil && t != nil {
		for _, ds := range t.Datastores {
			if slices.Contains(s.Exclude, ds.Name) || !anyOf(s.Names, ds.Name) || !anyOf(s.Engines, ds.Engine) || !anyInt(s.Tiers, ds.Tier) {
				continue
			}
			type member struct {
				site, addr string
				port       int
			}
			members := []member{{ds.Primary, ds.Address, ds.Port}}
			for _, r := range ds.Replicas {
				members = append(members, member{r.Site, r.Address, r.Port})
			}
			seen := map[string]bool{}
			for _, m := range members {
				if m.site == "" || seen[m.site] || !anyOf(s.Sites, m.site) {
					continue
				}
				seen[m.site] = true
				out = append(out, selected{&driver.Target{Kind: driver.KindDatastore, Name: ds.Name + "@" + m.site, Site: m.site,
					Address: m.addr, Port: m.port}, ds.Tier})
			}
		}
	}
	return out
}

func anyOf(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
func anyInt(list []int, v int) bool      { return len(list) == 0 || slices.Contains(list, v) }

// onlyFilter is the parsed --only filters: key to accepted values.
type onlyFilter map[string][]string

func parseOnly(only []string) (onlyFilter, error) {
	f := onlyFilter{}
	for _, o := range only {
		for _, part := range strings.Split(o, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || v == "" {
				return nil, fmt.Errorf("only %q: expected key=value (keys: site, rack, role, kind, name, label.KEY)", part)
			}
			switch {
			case k == "site", k == "rack", k == "role", k == "kind", k == "name", strings.HasPrefix(k, "label.") && len(k) > 6:
			default:
				return nil, fmt.Errorf("only %q: unknown key %q (expected site, rack, role, kind, name or label.KEY)", part, k)
			}
			f[k] = append(f[k], v)
		}
	}
	return f, nil
}

func (f onlyFilter) match(t *driver.Target) bool {
	for k, vals := range f {
		var v string
		switch k {
		case "site":
			v = t.Site
		case "rack":
			v = t.Rack
		case "role":
			v = t.Role
		case "kind":
			v = t.Kind
		case "name":
			v = t.Name
		default:
			v = t.Labels[strings.TrimPrefix(k, "label.")]
		}
		if !slices.Contains(vals, v) {
			return false
		}
	}
	return true
}

func checkDrivers(rb *Runbook, drivers driver.Registry) error {
	var errs []string
	check := func(s *Step, what string, a Action) {
		d, err := drivers.Get(a.Driver)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: step %s %s: %v", rb.Source, a.Pos.Line, a.Pos.Col, s.Name, what, err))
			return
		}
		if o, ok := d.(driver.Ops); ok && !slices.Contains(o.Ops(), a.Op) {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: step %s %s: driver %s has no operation %q (expected one of: %s)",
				rb.Source, a.Pos.Line, a.Pos.Col, s.Name, what, a.Driver, a.Op, strings.Join(o.Ops(), ", ")))
		}
	}
	for _, s := range rb.Steps {
		check(s, "action", s.Action)
		if s.Verify != nil {
			check(s, "verify", s.Verify.Action)
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}
