package analysis

import (
	"strconv"
	"strings"
)

// Node states during evaluation.
const (
	stUp uint8 = iota
	stDegraded
	stDown
	stFailover // datastore usable after promoting a replica
)

// statusOf maps an evaluation state to the exported Status.
var statusOf = [...]Status{Up, Degraded, Down, Failover}

// spec is one scenario to evaluate.
type spec struct {
	id, kind string
	lost     []string // as reported in Scenario.Lost
	sites    []int32  // sites lost
	rack     int      // index into graph.racks, or -1
	// compromised is the site whose credentials an attacker holds, or -1.
	compromised int32
	// where describes what is lost, for reasons: "pangyo",
	// "pangyo and gasan", "rack r1 of pangyo".
	where string
}

// scratch is one worker's reusable evaluation state. Per-node arrays are
// indexed by evaluation position (graph.pos), not by node.
type scratch struct {
	status    []uint8
	cause     []int32 // -1: the node itself; else the position of the dependency responsible
	causeHard []bool
	depth     []int32 // length of the chain from each node to its root cause
	remCap    []int64
	remCnt    []int32
	rackCap   []int64
	rackCnt   []int32
	lostSite  []bool
	promote   []int32 // per datastore: replica site to promote, or -1
	promSync  []bool
	reason    []string
	reasonSet []int32
}

func newScratch(g *graph) *scratch {
	n := g.nsvc + g.nds
	return &scratch{
		status:    make([]uint8, n),
		cause:     make([]int32, n),
		causeHard: make([]bool, n),
		depth:     make([]int32, n),
		remCap:    make([]int64, n),
		remCnt:    make([]int32, n),
		rackCap:   make([]int64, n),
		rackCnt:   make([]int32, n),
		lostSite:  make([]bool, g.nsites),
		promote:   make([]int32, g.nds),
		promSync:  make([]bool, g.nds),
		reason:    make([]string, n),
	}
}

// eval computes every node's status for sp into sc. Positions follow the
// topological order, so each dependency is final before its dependants
// read it, and every array is read front to back.
func (g *graph) eval(sp *spec, sc *scratch) {
	for i := range sc.lostSite {
		sc.lostSite[i] = false
	}
	for _, s := range sp.sites {
		sc.lostSite[s] = true
	}
	if sp.rack >= 0 {
		r := &g.racks[sp.rack]
		for k, v := range r.svc {
			p := g.pos[v]
			sc.rackCap[p] += r.cap[k]
			sc.rackCnt[p] += r.cnt[k]
		}
	}
	for _, p := range sc.reasonSet {
		sc.reason[p] = ""
	}
	sc.reasonSet = sc.reasonSet[:0]

	// Locals, so the compiler keeps slice headers in registers.
	ns, nsvc, n := g.nsites, int32(g.nsvc), len(g.order)
	at := g.order
	status, cause, causeHard, depth := sc.status[:n], sc.cause[:n], sc.causeHard[:n], sc.depth[:n]
	remCap, remCnt, rackCap, rackCnt := sc.remCap[:n], sc.remCnt[:n], sc.rackCap[:n], sc.rackCnt[:n]
	totCap, totCnt, peak, capSite, cntSite := g.eTotCap[:n], g.eTotCnt[:n], g.ePeak[:n], g.eCapSite, g.eCntSite
	depStart, depTo, depHard := g.eDepStart, g.eDepTo, g.eDepHard
	for p := 0; p < n; p++ {
		if at[p] >= nsvc {
			g.evalDatastore(sp, sc, int32(p))
			depth[p] = 1
			continue
		}
		c, k := totCap[p], totCnt[p]
		row := p * ns
		for _, s := range sp.sites {
			c -= capSite[row+int(s)]
			k -= cntSite[row+int(s)]
		}
		c -= rackCap[p]
		k -= rackCnt[p]
		if fo := g.eFailover[p]; fo != nil {
			c = g.failoverCap(sp, sc, int32(p), fo)
		}
		remCap[p], remCnt[p] = c, k
		st, cs, hard := stUp, int32(-1), true
		pk := peak[p]
		switch {
		case totCnt[p] == 0:
			// No endpoints declared: outside the topology (an external
			// service); only its dependencies count.
		case k <= 0 || (pk > 0 && c <= 0):
			st = stDown
		case pk > 0 && c < pk:
			st = stDegraded
		}
		if st != stDown {
			for e, end := depStart[p], depStart[p+1]; e < end; e++ {
				d := depTo[e]
				ds := status[d]
				if ds == stUp || ds == stFailover {
					continue
				}
				if depHard[e] {
					if ds == stDown {
						st, cs, hard = stDown, d, true
						break
					}
					if st == stUp {
						st, cs, hard = stDegraded, d, true
					}
				} else if ds == stDown && st == stUp {
					st, cs, hard = stDegraded, d, false
				}
			}
		}
		status[p], cause[p], causeHard[p] = st, cs, hard
		if cs >= 0 {
			depth[p] = depth[cs] + 1
		} else {
			depth[p] = 1
		}
	}
	if sp.rack >= 0 {
		for _, v := range g.racks[sp.rack].svc {
			p := g.pos[v]
			sc.rackCap[p], sc.rackCnt[p] = 0, 0
		}
	}
}

// failoverCap is the capacity of a failover-policy service at position p:
// that of the first site in its failover order with an endpoint left.
func (g *graph) failoverCap(sp *spec, sc *scratch, p int32, order []int32) int64 {
	row := int(p) * g.nsites
	rackSite := int32(-1)
	if sp.rack >= 0 {
		rackSite = g.racks[sp.rack].site
	}
	for _, s := range order {
		if sc.lostSite[s] {
			continue
		}
		n, c := g.eCntSite[row+int(s)], g.eCapSite[row+int(s)]
		if s == rackSite {
			n -= sc.rackCnt[p]
			c -= sc.rackCap[p]
		}
		if n > 0 {
			return c
		}
	}
	return 0
}

// evalDatastore decides the datastore at position p.
func (g *graph) evalDatastore(sp *spec, sc *scratch, p int32) {
	i := int(g.order[p]) - g.nsvc
	sc.cause[p], sc.causeHard[p] = -1, true
	sc.promote[i], sc.promSync[i] = -1, false
	prim := g.dsPrimary[i]
	if sp.compromised >= 0 {
		if prim == sp.compromised {
			sc.status[p] = stDown
		} else {
			sc.status[p] = stUp
		}
		return
	}
	if prim < 0 || !sc.lostSite[prim] {
		sc.status[p] = stUp
		return
	}
	for _, r := range g.dsReplicas[i] {
		if sc.lostSite[r.site] {
			continue
		}
		if sc.promote[i] < 0 || (r.sync && !sc.promSync[i]) {
			sc.promote[i], sc.promSync[i] = r.site, r.sync
		}
	}
	if sc.promote[i] >= 0 {
		sc.status[p] = stFailover
	} else {
		sc.status[p] = stDown
	}
}

// rootReason says why the node at position p is itself down or degraded.
func (g *graph) rootReason(sp *spec, sc *scratch, p int32) string {
	if r := sc.reason[p]; r != "" {
		return r
	}
	var r string
	if v := g.order[p]; int(v) < g.nsvc {
		switch {
		case sc.remCnt[p] <= 0:
			r = "no endpoint outside " + sp.where
		case sc.status[p] == stDown:
			r = "no capacity outside " + sp.where
		default:
			r = "capacity " + strconv.FormatInt(sc.remCap[p], 10) + " of peak " + strconv.FormatInt(g.ePeak[p], 10) + " outside " + sp.where
		}
	} else {
		r = g.datastoreReason(sp, sc, p)
	}
	sc.reason[p] = r
	sc.reasonSet = append(sc.reasonSet, p)
	return r
}

func (g *graph) datastoreReason(sp *spec, sc *scratch, p int32) string {
	i := int(g.order[p]) - g.nsvc
	d := g.t.Datastores[i]
	if sp.compromised >= 0 {
		var imm []string
		for _, b := range d.Backups {
			if b.Immutable {
				imm = append(imm, b.Site)
			}
		}
		if len(imm) == 0 {
			return "primary in compromised site " + d.Primary + ", no immutable backup"
		}
		return "primary in compromised site " + d.Primary + ", restore from immutable backup in " + strings.Join(uniq(imm), ", ")
	}
	switch sc.status[p] {
	case stFailover:
		mode := "async"
		if sc.promSync[i] {
			mode = "sync"
		}
		s := "primary " + d.Primary + " lost, promote " + mode + " replica in " + g.sites[sc.promote[i]]
		if !sc.promSync[i] && d.RPO == 0 {
			s += " (RPO 0 not met)"
		}
		return s
	default:
		return "primary " + d.Primary + ", no replica outside " + sp.where
	}
}

// chain writes the chain from the node at position p to its root cause
// into links, which must have room for sc.depth[p] entries, and returns it.
func (g *graph) chain(sp *spec, sc *scratch, p int32, links []Link) []Link {
	links = links[:0]
	hard := true
	for {
		v := g.order[p]
		l := Link{Name: g.names[v], Hard: hard}
		if int(v) >= g.nsvc {
			l.Type = LinkDatastore
		}
		c := sc.cause[p]
		if c < 0 {
			l.Reason = g.rootReason(sp, sc, p)
			return append(links, l)
		}
		if len(links)+1 >= cap(links) {
			// Only a dependency cycle, which the parser rejects, gets here.
			l.Reason = "dependency cycle"
			return append(links, l)
		}
		links = append(links, l)
		hard = sc.causeHard[p]
		p = c
	}
}

func uniq(s []string) []string {
	out := s[:0]
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
