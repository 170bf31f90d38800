package analysis

import (
	"fmt"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// Rule IDs. A finding's ID is the rule, then its subject and sites, joined
// by "/"; docs/analysis.md explains each rule and how to fix it.
const (
	RuleOpsSPOF        = "FB-OPS-SPOF"          // an ops tool stops when one site is lost
	RuleOpsDegraded    = "FB-OPS-DEGRADED"      // an ops tool is degraded when one site is lost
	RuleSPOFService    = "FB-SPOF-SERVICE"      // a service has no endpoint outside one site
	RuleSPOFChain      = "FB-SPOF-CHAIN"        // a service stops through a hard dependency chain
	RuleCapacity       = "FB-CAPACITY"          // the sites left cannot carry the peak
	RuleCapacityBase   = "FB-CAPACITY-BASELINE" // below peak even with every site up
	RuleNoEndpoints    = "FB-NO-ENDPOINTS"      // a service declares no endpoint: treated as external
	RuleDegradedDep    = "FB-DEGRADED-DEP"      // degraded through a dependency
	RuleSPOFRack       = "FB-SPOF-RACK"         // a service stops when one rack is lost
	RuleSitePair       = "FB-SITE-PAIR"         // a service survives any one site but not some pair
	RuleDataNoReplica  = "FB-DATA-NO-REPLICA"   // primary lost, no replica outside its site
	RuleDataRPO        = "FB-DATA-RPO"          // RPO 0 but only async replicas outside the primary's site
	RuleDataBackupSite = "FB-DATA-BACKUP-SITE"  // every backup is in the primary's site
	RuleDataNoBackup   = "FB-DATA-NO-BACKUP"    // no backup at all (replicas are not backups)
	RuleDataImmutable  = "FB-DATA-NO-IMMUTABLE" // no immutable backup: a compromised site can delete everything
	RuleDataPair       = "FB-DATA-SITE-PAIR"    // every copy is within two sites
	RuleCPQuorum       = "FB-CP-QUORUM"         // losing a site leaves firebreak without a majority
	RuleCPDomains      = "FB-CP-DOMAINS"        // firebreak's nodes span fewer than three sites
	RuleCPNone         = "FB-CP-NONE"           // no firebreak node declared
	RuleDNS            = "FB-DNS-SPOF"          // losing a site leaves no authoritative server for the zone
	RuleTierWeakest    = "FB-TIER-WEAKEST"      // a tier-0 service's hard dependency is less redundant than it
	RuleTierInversion  = "FB-TIER-INVERSION"    // a hard dependency has a less critical tier than its dependant
)

// tierSeverity is the severity of a service stopping, by its tier.
func tierSeverity(tier int) Severity {
	switch {
	case tier <= 0:
		return Critical
	case tier == 1:
		return High
	case tier == 2:
		return Medium
	default:
		return Low
	}
}

func lower(s Severity) Severity {
	if s > Info {
		return s - 1
	}
	return s
}

func id(parts ...string) string { return strings.Join(parts, "/") }

// scenarioFindings derives the findings that one scenario shows on its
// own (single sites and racks); workers call it right after evaluating the
// scenario, so it only reads g.
func (g *graph) scenarioFindings(sc *Scenario) []Finding {
	switch sc.Kind {
	case KindSite:
		return g.siteFindings(nil, sc)
	case KindRack:
		return g.rackFindings(nil, sc)
	}
	return nil
}

// findings gathers the per-scenario findings and derives those that need
// every scenario or only the topology.
func (g *graph) findings(res *Result, per [][]Finding) []Finding {
	n := 4*g.nds + g.nsvc/4 + len(g.sites)
	for _, f := range per {
		n += len(f)
	}
	out := make([]Finding, 0, n)
	for _, f := range per {
		out = append(out, f...)
	}
	// What a single site stops is reported there, not again as a pair.
	downInSite := make([]bool, g.nsvc+g.nds)
	for i := range res.Scenarios {
		sc := &res.Scenarios[i]
		if sc.Kind != KindSite {
			continue
		}
		for j := range sc.Services {
			if sc.Services[j].Status == Down {
				downInSite[g.nodeOf[sc.Services[j].Service]] = true
			}
		}
		for _, di := range sc.Datastores {
			if di.Status == Down {
				downInSite[g.nodeOf[di.Datastore]] = true
			}
		}
	}
	out = g.pairFindings(out, res, downInSite)
	out = g.dataFindings(out)
	out = g.controlPlaneFindings(out, res)
	out = g.baselineFindings(out)
	return g.tierFindings(out)
}

// siteFindings reports what one single-site loss stops or degrades.
func (g *graph) siteFindings(out []Finding, sc *Scenario) []Finding {
	site := sc.Lost[0]
	byName := make(map[string]*ServiceImpact, len(sc.Services))
	for i := range sc.Services {
		byName[sc.Services[i].Service] = &sc.Services[i]
	}
	type fixKey struct {
		root string
		own  bool
	}
	fixes := map[fixKey]string{}
	dsDown := map[string]bool{}
	for _, di := range sc.Datastores {
		if di.Status == Down {
			dsDown[di.Datastore] = true
		}
	}
	for i := range sc.Services {
		si := &sc.Services[i]
		root := si.Chain[len(si.Chain)-1]
		own := len(si.Chain) == 1
		// Chains converge on a few roots: compute each root's fix once.
		fk := fixKey{root.Name, own}
		fix, ok := fixes[fk]
		if !ok {
			fix = g.fixFor(root, byName, dsDown, sc)
			if !own {
				fix = "make " + root.Name + " survive the loss of " + site + ": " + fix
			}
			fixes[fk] = fix
		}
		f := Finding{Subject: si.Service, Scenario: sc.ID, Chain: si.Chain, Fix: fix}
		switch {
		case si.Kind == topology.KindOps && si.Status == Down:
			f.Rule, f.Severity = RuleOpsSPOF, Critical
			f.Message = fmt.Sprintf("ops tool %s stops when %s is lost: operators lose it exactly when they need it", si.Service, site)
		case si.Kind == topology.KindOps && own && g.short(g.nodeOf[si.Service]):
			continue // reported once as FB-CAPACITY-BASELINE
		case si.Kind == topology.KindOps:
			f.Rule, f.Severity = RuleOpsDegraded, High
			f.Message = fmt.Sprintf("ops tool %s is degraded when %s is lost", si.Service, site)
		case si.Status == Down && own:
			f.Rule, f.Severity = RuleSPOFService, tierSeverity(si.Tier)
			f.Message = fmt.Sprintf("tier-%d service %s stops when %s is lost: %s", si.Tier, si.Service, site, root.Reason)
		case si.Status == Down:
			f.Rule, f.Severity = RuleSPOFChain, tierSeverity(si.Tier)
			f.Message = fmt.Sprintf("tier-%d service %s stops when %s is lost, through its hard dependency on %s", si.Tier, si.Service, site, si.Chain[1].Name)
		case own && g.short(g.nodeOf[si.Service]):
			continue // reported once as FB-CAPACITY-BASELINE
		case own:
			f.Rule, f.Severity = RuleCapacity, lower(tierSeverity(si.Tier))
			f.Message = fmt.Sprintf("tier-%d service %s is degraded when %s is lost: capacity %d left of peak %d", si.Tier, si.Service, site, si.Capacity, si.Peak)
		default:
			f.Rule, f.Severity = RuleDegradedDep, lower(lower(tierSeverity(si.Tier)))
			f.Message = fmt.Sprintf("tier-%d service %s is degraded when %s is lost, through its dependency on %s", si.Tier, si.Service, site, si.Chain[1].Name)
		}
		f.ID = id(f.Rule, si.Service, site)
		out = append(out, f)
	}
	for _, di := range sc.Datastores {
		d := g.t.Datastores[g.nodeOf[di.Datastore]-int32(g.nsvc)]
		if di.Status == Down {
			sev := Critical
			if d.Tier >= 2 {
				sev = tierSeverity(d.Tier - 1)
			}
			out = append(out, Finding{
				ID: id(RuleDataNoReplica, d.Name, site), Rule: RuleDataNoReplica, Severity: sev,
				Subject: d.Name, Scenario: sc.ID,
				Message: fmt.Sprintf("datastore %s loses its primary in %s and has no replica outside it", d.Name, site),
				Chain:   []Link{{Name: d.Name, Type: LinkDatastore, Hard: true, Reason: di.Reason}},
				Fix:     g.replicaFix(d, sc.Lost),
			})
		}
	}
	return out
}

// fixFor proposes the change that makes a chain's root survive sc.
func (g *graph) fixFor(root Link, byName map[string]*ServiceImpact, dsDown map[string]bool, sc *Scenario) string {
	if root.Type == LinkDatastore {
		return g.replicaFix(g.t.Datastores[g.nodeOf[root.Name]-int32(g.nsvc)], sc.Lost)
	}
	ri := byName[root.Name]
	where := g.otherSites(sc.Lost)
	if ri != nil && ri.Status == Degraded {
		return fmt.Sprintf("add capacity of at least %d to %s outside %s (it has %d of peak %d left), e.g. in %s",
			ri.Peak-ri.Capacity, root.Name, strings.Join(sc.Lost, " and "), ri.Capacity, ri.Peak, where)
	}
	fix := fmt.Sprintf("add an endpoint of %s in %s", root.Name, where)
	// New endpoints alone are not enough when a hard dependency is lost
	// too: name those, so the fix is complete.
	var also []string
	for _, d := range g.t.Services[g.nodeOf[root.Name]].DependsOn {
		if !d.Hard {
			continue
		}
		if di := byName[d.Target]; (di != nil && di.Status == Down) || dsDown[d.Target] {
			also = append(also, d.Target)
		}
	}
	if len(also) > 0 {
		dep := "dependency "
		if len(also) > 1 {
			dep = "dependencies "
		}
		fix += "; it also needs its hard " + dep + joinAnd(also) + ", which this loss stops too"
	}
	return fix
}

func (g *graph) replicaFix(d *topology.Datastore, lost []string) string {
	mode := ""
	if d.RPO == 0 {
		mode = "sync "
	}
	return fmt.Sprintf("add a %sreplica of %s outside %s, e.g. in %s", mode, d.Name, strings.Join(lost, " and "), g.otherSites(lost))
}

// otherSites names the datacenters outside lost: "gasan or ansan". The
// single-site answers are precomputed (compile), so concurrent callers only
// read.
func (g *graph) otherSites(lost []string) string {
	if len(lost) == 1 {
		if s, ok := g.otherOne[lost[0]]; ok {
			return s
		}
	}
	return g.otherSitesOf(lost)
}

func (g *graph) otherSitesOf(lost []string) string {
	var c []string
	for _, s := range g.t.Sites {
		if s.Role != topology.RoleDatacenter || contains(lost, s.Name) {
			continue
		}
		c = append(c, s.Name)
	}
	switch {
	case len(c) == 0:
		return "a new datacenter site"
	case len(c) == 1:
		return c[0]
	case len(c) <= 3:
		return strings.Join(c[:len(c)-1], ", ") + " or " + c[len(c)-1]
	default:
		return strings.Join(c[:3], ", ") + " or another datacenter"
	}
}

// joinAnd writes "a", "a and b", "a, b and c".
func joinAnd(list []string) string {
	if len(list) <= 1 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " and " + list[len(list)-1]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// short reports whether service v is below its peak with nothing lost.
func (g *graph) short(v int32) bool {
	return g.peak[v] > 0 && g.baseCap[v] < g.peak[v]
}

// baselineFindings reports services that cannot carry their peak even
// before anything is lost.
func (g *graph) baselineFindings(out []Finding) []Finding {
	for v, s := range g.t.Services {
		if g.totCnt[v] == 0 {
			out = append(out, Finding{
				ID: id(RuleNoEndpoints, s.Name), Rule: RuleNoEndpoints, Severity: Info, Subject: s.Name,
				Message: fmt.Sprintf("service %s declares no endpoints: analysis treats it as external, up in every scenario", s.Name),
				Fix:     fmt.Sprintf("declare the endpoints of %s (site, address, port, capacity) to analyse it", s.Name),
			})
			continue
		}
		if !g.short(int32(v)) {
			continue
		}
		what := "its endpoints"
		if s.Policy == topology.PolicyFailover {
			what = "its first failover site"
		}
		sev := lower(tierSeverity(s.Tier))
		if s.Kind == topology.KindOps {
			sev = High
		}
		out = append(out, Finding{
			ID: id(RuleCapacityBase, s.Name), Rule: RuleCapacityBase, Severity: sev, Subject: s.Name,
			Message: fmt.Sprintf("service %s is below its peak with every site up: %s carry %d of %d", s.Name, what, g.baseCap[v], g.peak[v]),
			Fix:     fmt.Sprintf("add capacity of at least %d to %s, then N+1 on sites", g.peak[v]-g.baseCap[v], s.Name),
		})
	}
	return out
}

// rackFindings reports services that one rack's loss stops.
func (g *graph) rackFindings(out []Finding, sc *Scenario) []Finding {
	site, rackName, _ := strings.Cut(sc.Lost[0], "/")
	for _, si := range sc.Services {
		if si.Status != Down {
			continue
		}
		sev := lower(tierSeverity(si.Tier))
		if si.Kind == topology.KindOps {
			sev = High
		}
		out = append(out, Finding{
			ID: id(RuleSPOFRack, si.Service, site, rackName), Rule: RuleSPOFRack, Severity: sev,
			Subject: si.Service, Scenario: sc.ID, Chain: si.Chain,
			Message: fmt.Sprintf("service %s stops when rack %s of %s is lost", si.Service, rackName, site),
			Fix:     fmt.Sprintf("spread %s over several racks (and sites)", si.Chain[len(si.Chain)-1].Name),
		})
	}
	return out
}

// pairFindings reports what survives every single-site loss but not the
// loss of some pair of sites: one finding per subject.
func (g *graph) pairFindings(out []Finding, res *Result, downInSite []bool) []Finding {
	type agg struct {
		first string
		n     int
		chain []Link
	}
	pairs := map[int32]*agg{}
	var order []int32
	note := func(v int32, sc *Scenario, chain []Link) {
		if downInSite[v] {
			return
		}
		a := pairs[v]
		if a == nil {
			a = &agg{first: sc.ID, chain: chain}
			pairs[v] = a
			order = append(order, v)
		}
		a.n++
	}
	for i := range res.Scenarios {
		sc := &res.Scenarios[i]
		if sc.Kind != KindSitePair {
			continue
		}
		for j := range sc.Services {
			if sc.Services[j].Status == Down {
				note(g.nodeOf[sc.Services[j].Service], sc, sc.Services[j].Chain)
			}
		}
		for _, di := range sc.Datastores {
			if di.Status == Down {
				note(g.nodeOf[di.Datastore], sc, nil)
			}
		}
	}
	for _, v := range order {
		a := pairs[v]
		name := g.name(v)
		pair := strings.TrimPrefix(a.first, KindSitePair+":")
		more := ""
		if a.n > 1 {
			more = fmt.Sprintf(" (and %d other pairs)", a.n-1)
		}
		if g.isService(v) {
			s := g.t.Services[v]
			sev := Info
			if s.Tier == 0 || s.Kind == topology.KindOps {
				sev = Low
			}
			out = append(out, Finding{
				ID: id(RuleSitePair, name), Rule: RuleSitePair, Severity: sev, Subject: name, Scenario: a.first,
				Message: fmt.Sprintf("service %s survives any one site but stops when %s are both lost%s", name, strings.ReplaceAll(pair, "+", " and "), more),
				Chain:   a.chain,
				Fix:     fmt.Sprintf("run %s in a third site if it must survive two losses", a.chain[len(a.chain)-1].Name),
			})
			continue
		}
		d := g.t.Datastores[int(v)-g.nsvc]
		sev := Info
		if d.Tier <= 1 {
			sev = Low
		}
		out = append(out, Finding{
			ID: id(RuleDataPair, name), Rule: RuleDataPair, Severity: sev, Subject: name, Scenario: a.first,
			Message: fmt.Sprintf("datastore %s has every copy within %s%s", name, strings.ReplaceAll(pair, "+", " and "), more),
			Fix:     fmt.Sprintf("add a replica of %s in a third site if it must survive two losses", name),
		})
	}
	return out
}

// dataFindings checks replica modes and backups, which no site scenario
// shows: RPO feasibility, backup placement and the compromised site.
func (g *graph) dataFindings(out []Finding) []Finding {
	for _, d := range g.t.Datastores {
		sev := High
		if d.Tier >= 2 {
			sev = Medium
		}
		site := KindSite + ":" + d.Primary
		comp := KindCompromised + ":" + d.Primary
		if d.RPO == 0 {
			var async []string
			syncOut := false
			for _, r := range d.Replicas {
				if r.Site == d.Primary {
					continue
				}
				if r.Mode == topology.ModeSync {
					syncOut = true
				} else {
					async = append(async, r.Site)
				}
			}
			if !syncOut && len(async) > 0 {
				out = append(out, Finding{
					ID: id(RuleDataRPO, d.Name), Rule: RuleDataRPO, Severity: sev, Subject: d.Name, Scenario: site,
					Message: fmt.Sprintf("datastore %s has RPO 0 but its replicas outside %s are asynchronous: a failover loses the writes not yet replicated", d.Name, d.Primary),
					Fix:     fmt.Sprintf("make the replica in %s synchronous, or declare the RPO its lag allows", async[0]),
				})
			}
		}
		if len(d.Backups) == 0 {
			out = append(out, Finding{
				ID: id(RuleDataNoBackup, d.Name), Rule: RuleDataNoBackup, Severity: sev, Subject: d.Name, Scenario: comp,
				Message: fmt.Sprintf("datastore %s has no backup: replicas copy deletions and corruption, so they are not backups", d.Name),
				Fix:     fmt.Sprintf("back %s up to an immutable store outside %s, e.g. in %s", d.Name, d.Primary, g.otherSites([]string{d.Primary})),
			})
			continue
		}
		outside := false
		for _, b := range d.Backups {
			if b.Site != d.Primary {
				outside = true
			}
		}
		if !outside {
			out = append(out, Finding{
				ID: id(RuleDataBackupSite, d.Name, d.Primary), Rule: RuleDataBackupSite, Severity: sev, Subject: d.Name, Scenario: site,
				Message: fmt.Sprintf("every backup of datastore %s is in %s, the site of its primary: one fire takes both", d.Name, d.Primary),
				Fix:     fmt.Sprintf("keep a backup of %s outside %s, e.g. in %s", d.Name, d.Primary, g.otherSites([]string{d.Primary})),
			})
		}
		if !hasImmutable(d) {
			out = append(out, Finding{
				ID: id(RuleDataImmutable, d.Name), Rule: RuleDataImmutable, Severity: sev, Subject: d.Name, Scenario: comp,
				Message: fmt.Sprintf("datastore %s has no immutable backup: an attacker holding %s's credentials can delete the primary, its replicas and every backup", d.Name, d.Primary),
				Fix:     fmt.Sprintf("add an immutable (object-locked) backup of %s outside %s, every %s or less", d.Name, d.Primary, backupEvery(d)),
			})
		}
	}
	return out
}

func backupEvery(d *topology.Datastore) string {
	if d.RPO > 0 {
		return fmtDuration(d.RPO)
	}
	return fmtDuration(time.Hour)
}

// fmtDuration writes 1h, 90m, 30s rather than 1h0m0s.
func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// controlPlaneFindings checks that firebreak itself survives any one site.
func (g *graph) controlPlaneFindings(out []Finding, res *Result) []Finding {
	if len(g.nodeSite) == 0 {
		return append(out, Finding{
			ID: id(RuleCPNone, "control-plane"), Rule: RuleCPNone, Severity: High, Subject: "control-plane",
			Message: "no firebreak nodes are declared: nothing fails traffic or data over automatically",
			Fix:     "declare one firebreak node per site under nodes:, in at least three sites (two datacenters and a witness)",
		})
	}
	sites := map[int32]bool{}
	for _, s := range g.nodeSite {
		sites[s] = true
	}
	if len(sites) < 3 {
		out = append(out, Finding{
			ID: id(RuleCPDomains, "control-plane"), Rule: RuleCPDomains, Severity: High, Subject: "control-plane",
			Message: fmt.Sprintf("firebreak's %d nodes are in %d site(s): a majority cannot survive the loss of every site", len(g.nodeSite), len(sites)),
			Fix:     "run one firebreak node in each of at least three sites; a small witness site can be the third",
		})
	}
	out = g.dnsFindings(out)
	for i := range res.Scenarios {
		sc := &res.Scenarios[i]
		if sc.Kind != KindSite || sc.ControlPlane.Quorum {
			continue
		}
		cp := sc.ControlPlane
		out = append(out, Finding{
			ID: id(RuleCPQuorum, sc.Lost[0]), Rule: RuleCPQuorum, Severity: Critical, Subject: "control-plane", Scenario: sc.ID,
			Message: fmt.Sprintf("losing %s leaves %d of %d firebreak nodes, no majority: no automatic failover, every switch is by hand", sc.Lost[0], cp.Surviving, cp.Nodes),
			Fix:     fmt.Sprintf("move firebreak nodes out of %s so that each site holds less than half of them (one node per site, three or more sites)", sc.Lost[0]),
		})
	}
	return out
}

// dnsFindings checks that the zone keeps an authoritative server (a
// firebreak node with a dns listener, or a declared secondary) after any
// single-site loss: without one, every name in the zone stops resolving,
// whatever survives.
func (g *graph) dnsFindings(out []Finding) []Finding {
	t := g.t
	if t.DNS.Zone == "" || len(t.DNS.Secondaries) > 0 {
		return out
	}
	perSite := map[string]int{}
	total := 0
	for _, n := range t.Nodes {
		if n.DNS != "" {
			perSite[n.Site]++
			total++
		}
	}
	if total == 0 {
		return out
	}
	for _, s := range t.Sites {
		if perSite[s.Name] < total {
			continue
		}
		out = append(out, Finding{
			ID: id(RuleDNS, s.Name), Rule: RuleDNS, Severity: Critical, Subject: t.DNS.Zone, Scenario: KindSite + ":" + s.Name,
			Message: fmt.Sprintf("every firebreak DNS server for %s is in %s: losing it stops every name in the zone from resolving", t.DNS.Zone, s.Name),
			Fix:     fmt.Sprintf("run a firebreak node with a dns listener outside %s (one per site), or declare dns secondaries", s.Name),
		})
	}
	return out
}

// tierFindings applies the tier rule: a tier-0 service is only as available
// as its least redundant hard dependency; and a hard dependency should be at
// least as critical as its dependant.
func (g *graph) tierFindings(out []Finding) []Finding {
	n := g.nsvc + g.nds
	eff := make([]int32, n)
	via := make([]int32, n) // the hard dependency through which eff is reached, or -1
	for _, v := range g.order {
		eff[v], via[v] = g.redundancy[v], -1
		for e := g.depStart[v]; e < g.depStart[v+1]; e++ {
			if d := g.depTo[e]; g.depHard[e] && eff[d] < eff[v] {
				eff[v], via[v] = eff[d], d
			}
		}
	}
	tierOf := func(v int32) int {
		if g.isService(v) {
			return g.t.Services[v].Tier
		}
		return g.t.Datastores[int(v)-g.nsvc].Tier
	}
	for v := int32(0); int(v) < g.nsvc; v++ {
		s := g.t.Services[v]
		for e := g.depStart[v]; e < g.depStart[v+1]; e++ {
			d := g.depTo[e]
			if g.depHard[e] && tierOf(d) > s.Tier {
				out = append(out, Finding{
					ID: id(RuleTierInversion, s.Name, g.name(d)), Rule: RuleTierInversion, Severity: Low, Subject: s.Name,
					Message: fmt.Sprintf("tier-%d service %s depends hard on %s, declared tier %d: its real tier is the weaker one", s.Tier, s.Name, g.name(d), tierOf(d)),
					Fix:     fmt.Sprintf("declare %s tier %d and give it the redundancy that needs, or make the dependency soft", g.name(d), s.Tier),
				})
			}
		}
		if s.Tier != 0 || via[v] < 0 {
			continue
		}
		chain := []Link{{Name: s.Name, Hard: true}}
		w := via[v]
		for u := via[v]; u >= 0; u = via[u] {
			l := Link{Name: g.name(u), Hard: true}
			if !g.isService(u) {
				l.Type = LinkDatastore
			}
			w = u
			chain = append(chain, l)
		}
		chain[len(chain)-1].Reason = fmt.Sprintf("in %d site(s)", eff[v])
		sev := Medium
		if eff[v] <= 1 {
			sev = High
		}
		fix := fmt.Sprintf("run %s in %d sites or more", g.name(w), g.redundancy[v])
		if !g.isService(w) {
			fix = fmt.Sprintf("add replicas of %s so that it is in %d sites or more", g.name(w), g.redundancy[v])
		}
		out = append(out, Finding{
			ID: id(RuleTierWeakest, s.Name, g.name(w)), Rule: RuleTierWeakest, Severity: sev, Subject: s.Name,
			Message: fmt.Sprintf("tier-0 service %s runs in %d sites but its hard dependency %s is in %d: it is only as available as %s",
				s.Name, g.redundancy[v], g.name(w), eff[v], g.name(w)),
			Chain: chain,
			Fix:   fix,
		})
	}
	return out
}
