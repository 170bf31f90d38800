package analysis

import (
	"github.com/firebreak/firebreak/internal/topology"
)

// graph is the topology compiled into flat indexes so that one scenario is
// evaluated in O(services + dependencies) without maps or allocation.
// Nodes 0..nsvc-1 are services, nsvc..nsvc+nds-1 datastores, in file order.
type graph struct {
	t      *topology.Topology
	nsvc   int
	nds    int
	nsites int
	sites  []string
	siteOf map[string]int32
	nodeOf map[string]int32

	// Per service, per site (row-major, nsites wide): endpoint capacity and
	// endpoint count; and their totals.
	capSite, totCap, peak []int64
	cntSite, totCnt       []int32

	// Dependencies in CSR form: node v depends on depTo[depStart[v]:depStart[v+1]].
	depStart []int32
	depTo    []int32
	depHard  []bool

	// order lists nodes so that every dependency comes before its dependants.
	order []int32

	// Datastores (indexed by node-nsvc).
	dsPrimary  []int32
	dsReplicas [][]replica

	// racks lists every declared rack with the endpoints in it.
	racks []rack

	// nodeSite is the site of each firebreak node.
	nodeSite []int32

	// names of every node.
	names []string

	// The evaluation layout: the arrays above renumbered by position in
	// order (pos maps a node to its position), so that one scenario reads
	// every array front to back. Datastore rows are zero.
	pos                      []int32
	eCapSite, eTotCap, ePeak []int64
	eCntSite, eTotCnt        []int32
	eDepStart, eDepTo        []int32
	eDepHard                 []bool
	// eFailover lists, for a service with the failover policy, its sites in
	// failover order: only the first one with an endpoint left serves, so
	// only its capacity counts. nil for every other policy.
	eFailover [][]int32

	// baseCap is each service's serving capacity with nothing lost.
	baseCap []int64

	// otherOne is otherSites for each single site lost.
	otherOne map[string]string

	// redundancy is the number of distinct datacenter sites that can run a
	// node (endpoints for a service; primary and replicas for a datastore).
	redundancy []int32
}

type replica struct {
	site int32
	sync bool
}

type rack struct {
	site int32
	name string
	// svc, cap and cnt list the services with endpoints in the rack.
	svc []int32
	cap []int64
	cnt []int32
}

func compile(t *topology.Topology) *graph {
	g := &graph{t: t, nsvc: len(t.Services), nds: len(t.Datastores), nsites: len(t.Sites)}
	g.siteOf = make(map[string]int32, len(t.Sites))
	for i, s := range t.Sites {
		g.sites = append(g.sites, s.Name)
		g.siteOf[s.Name] = int32(i)
	}
	n := g.nsvc + g.nds
	nodeOf := make(map[string]int32, n)
	g.nodeOf = nodeOf
	for i, s := range t.Services {
		nodeOf[s.Name] = int32(i)
	}
	for i, d := range t.Datastores {
		nodeOf[d.Name] = int32(g.nsvc + i)
	}

	g.capSite = make([]int64, g.nsvc*g.nsites)
	g.cntSite = make([]int32, g.nsvc*g.nsites)
	g.totCap = make([]int64, g.nsvc)
	g.totCnt = make([]int32, g.nsvc)
	g.peak = make([]int64, g.nsvc)
	g.redundancy = make([]int32, n)
	type rackKey struct {
		site int32
		name string
	}
	rackIdx := map[rackKey]int{}
	for si, s := range t.Sites {
		for _, r := range s.Racks {
			rackIdx[rackKey{int32(si), r}] = len(g.racks)
			g.racks = append(g.racks, rack{site: int32(si), name: r})
		}
	}
	ndeps := 0
	for _, s := range t.Services {
		ndeps += len(s.DependsOn)
	}
	g.depStart = make([]int32, n+1)
	g.depTo = make([]int32, 0, ndeps)
	g.depHard = make([]bool, 0, ndeps)
	for i, s := range t.Services {
		g.peak[i] = int64(s.Peak)
		row := i * g.nsites
		for _, e := range s.Endpoints {
			si, ok := g.siteOf[e.Site]
			if !ok {
				continue
			}
			g.capSite[row+int(si)] += int64(e.Capacity)
			g.cntSite[row+int(si)]++
			g.totCap[i] += int64(e.Capacity)
			g.totCnt[i]++
			if e.Rack != "" {
				if ri, ok := rackIdx[rackKey{si, e.Rack}]; ok {
					r := &g.racks[ri]
					if k := len(r.svc) - 1; k >= 0 && r.svc[k] == int32(i) {
						r.cap[k] += int64(e.Capacity)
						r.cnt[k]++
					} else {
						r.svc = append(r.svc, int32(i))
						r.cap = append(r.cap, int64(e.Capacity))
						r.cnt = append(r.cnt, 1)
					}
				}
			}
		}
		for si := 0; si < g.nsites; si++ {
			if g.cntSite[row+si] > 0 {
				g.redundancy[i]++
			}
		}
		if g.totCnt[i] == 0 {
			// External (no endpoints declared): as redundant as it gets.
			g.redundancy[i] = int32(g.nsites)
		}
		g.depStart[i] = int32(len(g.depTo))
		for _, d := range s.DependsOn {
			to, ok := nodeOf[d.Target]
			if !ok {
				continue
			}
			g.depTo = append(g.depTo, to)
			g.depHard = append(g.depHard, d.Hard)
		}
	}
	for i := g.nsvc; i <= n; i++ {
		g.depStart[i] = int32(len(g.depTo))
	}

	g.dsPrimary = make([]int32, g.nds)
	g.dsReplicas = make([][]replica, g.nds)
	for i, d := range t.Datastores {
		p, ok := g.siteOf[d.Primary]
		if !ok {
			p = -1
		}
		g.dsPrimary[i] = p
		seen := map[int32]bool{p: true}
		g.redundancy[g.nsvc+i] = 1
		for _, r := range d.Replicas {
			rs, ok := g.siteOf[r.Site]
			if !ok {
				continue
			}
			g.dsReplicas[i] = append(g.dsReplicas[i], replica{site: rs, sync: r.Mode == topology.ModeSync})
			if !seen[rs] {
				seen[rs] = true
				g.redundancy[g.nsvc+i]++
			}
		}
	}

	for _, nd := range t.Nodes {
		if si, ok := g.siteOf[nd.Site]; ok {
			g.nodeSite = append(g.nodeSite, si)
		}
	}
	g.names = make([]string, 0, n)
	for _, s := range t.Services {
		g.names = append(g.names, s.Name)
	}
	for _, d := range t.Datastores {
		g.names = append(g.names, d.Name)
	}
	g.order = g.topoOrder()
	g.layout()
	g.otherOne = make(map[string]string, len(g.sites))
	for _, s := range g.sites {
		g.otherOne[s] = g.otherSitesOf([]string{s})
	}
	return g
}

// layout builds the evaluation arrays in topological position order.
func (g *graph) layout() {
	n, ns := len(g.order), g.nsites
	g.pos = make([]int32, n)
	for p, v := range g.order {
		g.pos[v] = int32(p)
	}
	g.eCapSite = make([]int64, n*ns)
	g.eCntSite = make([]int32, n*ns)
	g.eTotCap = make([]int64, n)
	g.eTotCnt = make([]int32, n)
	g.ePeak = make([]int64, n)
	g.eDepStart = make([]int32, n+1)
	g.eDepTo = make([]int32, 0, len(g.depTo))
	g.eDepHard = make([]bool, 0, len(g.depHard))
	for p, v := range g.order {
		g.eDepStart[p] = int32(len(g.eDepTo))
		if int(v) >= g.nsvc {
			continue
		}
		copy(g.eCapSite[p*ns:(p+1)*ns], g.capSite[int(v)*ns:(int(v)+1)*ns])
		copy(g.eCntSite[p*ns:(p+1)*ns], g.cntSite[int(v)*ns:(int(v)+1)*ns])
		g.eTotCap[p], g.eTotCnt[p], g.ePeak[p] = g.totCap[v], g.totCnt[v], g.peak[v]
		for e := g.depStart[v]; e < g.depStart[v+1]; e++ {
			g.eDepTo = append(g.eDepTo, g.pos[g.depTo[e]])
			g.eDepHard = append(g.eDepHard, g.depHard[e])
		}
	}
	g.eDepStart[n] = int32(len(g.eDepTo))

	g.eFailover = make([][]int32, n)
	g.baseCap = make([]int64, g.nsvc)
	for v, svc := range g.t.Services {
		g.baseCap[v] = g.totCap[v]
		if svc.Policy != topology.PolicyFailover {
			continue
		}
		var order []int32
		seen := make([]bool, ns)
		add := func(name string) {
			if si, ok := g.siteOf[name]; ok && !seen[si] {
				seen[si] = true
				order = append(order, si)
			}
		}
		for _, f := range svc.Failover {
			add(f)
		}
		for _, e := range svc.Endpoints {
			add(e.Site)
		}
		g.eFailover[g.pos[v]] = order
		g.baseCap[v] = 0
		for _, si := range order {
			if g.cntSite[v*ns+int(si)] > 0 {
				g.baseCap[v] = g.capSite[v*ns+int(si)]
				break
			}
		}
	}
}

// topoOrder orders nodes dependencies first (Kahn's algorithm). The parser
// guarantees no cycle; nodes on a cycle, if any slipped through, are
// appended last so that evaluation still terminates.
func (g *graph) topoOrder() []int32 {
	n := g.nsvc + g.nds
	// pending[v] = number of dependencies of v not yet placed.
	pending := make([]int32, n)
	// reverse edges, CSR
	rstart := make([]int32, n+1)
	for v := 0; v < n; v++ {
		for _, to := range g.depTo[g.depStart[v]:g.depStart[v+1]] {
			rstart[to+1]++
		}
		pending[v] = g.depStart[v+1] - g.depStart[v]
	}
	for v := 0; v < n; v++ {
		rstart[v+1] += rstart[v]
	}
	rto := make([]int32, len(g.depTo))
	fill := append([]int32(nil), rstart[:n]...)
	for v := 0; v < n; v++ {
		for _, to := range g.depTo[g.depStart[v]:g.depStart[v+1]] {
			rto[fill[to]] = int32(v)
			fill[to]++
		}
	}
	order := make([]int32, 0, n)
	// Datastores first, then services in file order: a stable order.
	for v := g.nsvc; v < n; v++ {
		if pending[v] == 0 {
			order = append(order, int32(v))
		}
	}
	for v := 0; v < g.nsvc; v++ {
		if pending[v] == 0 {
			order = append(order, int32(v))
		}
	}
	for i := 0; i < len(order); i++ {
		v := order[i]
		for _, u := range rto[rstart[v]:rstart[v+1]] {
			pending[u]--
			if pending[u] == 0 {
				order = append(order, u)
			}
		}
	}
	if len(order) < n {
		placed := make([]bool, n)
		for _, v := range order {
			placed[v] = true
		}
		for v := 0; v < n; v++ {
			if !placed[v] {
				order = append(order, int32(v))
			}
		}
	}
	return order
}

func (g *graph) name(v int32) string { return g.names[v] }

func (g *graph) isService(v int32) bool { return int(v) < g.nsvc }
