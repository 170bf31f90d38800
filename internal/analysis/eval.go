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

// scratch is one worker's reusable evaluation state.
type scratch struct {
	status    []uint8
	cause     []int32 // -1: the node itself; else the dependency responsible
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
		remCap:    make([]int64, g.nsvc),
		remCnt:    make([]int32, g.nsvc),
		rackCap:   make([]int64, g.nsvc),
		rackCnt:   make([]int32, g.nsvc),
		lostSite:  make([]bool, g.nsites),
		promote:   make([]int32, g.nds),
		promSync:  make([]bool, g.nds),
		reason:    make([]string, n),
	}
}

// eval computes every node's status for sp into sc, in topological order so
// that each dependency is final before its dependants read it.
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
			sc.rackCap[v] += r.cap[k]
			sc.rackCnt[v] += r.cnt[k]
		}
	}
	for _, v := range sc.reasonSet {
		sc.reason[v] = ""
	}
	sc.reasonSet = sc.reasonSet[:0]

	// Locals, so the compiler keeps slice headers in registers.
	ns, nsvc := g.nsites, int32(g.nsvc)
	status, cause, causeHard, depth := sc.status, sc.cause, sc.causeHard, sc.depth
	remCap, remCnt, rackCap, rackCnt := sc.remCap, sc.remCnt, sc.rackCap, sc.rackCnt
	totCap, totCnt, peak, capSite, cntSite := g.totCap, g.totCnt, g.peak, g.capSite, g.cntSite
	depStart, depTo, depHard := g.depStart, g.depTo, g.depHard
	for _, v := range g.order {
		if v >= nsvc {
			g.evalDatastore(sp, sc, v)
			depth[v] = 1
			continue
		}
		c, k := totCap[v], totCnt[v]
		row := int(v) * ns
		for _, s := range sp.sites {
			c -= capSite[row+int(s)]
			k -= cntSite[row+int(s)]
		}
		c -= rackCap[v]
		k -= rackCnt[v]
		remCap[v], remCnt[v] = c, k
		st, cs, hard := stUp, int32(-1), true
		p := peak[v]
		switch {
		case k <= 0 || (p > 0 && c <= 0):
			st = stDown
		case p > 0 && c < p:
			st = stDegraded
		}
		if st != stDown {
			for e, end := depStart[v], depStart[v+1]; e < end; e++ {
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
		status[v], cause[v], causeHard[v] = st, cs, hard
		if cs >= 0 {
			depth[v] = depth[cs] + 1
		} else {
			depth[v] = 1
		}
	}
	if sp.rack >= 0 {
		for _, v := range g.racks[sp.rack].svc {
			sc.rackCap[v], sc.rackCnt[v] = 0, 0
		}
	}
}

func (g *graph) evalDatastore(sp *spec, sc *scratch, v int32) {
	i := int(v) - g.nsvc
	sc.cause[v], sc.causeHard[v] = -1, true
	sc.promote[i], sc.promSync[i] = -1, false
	p := g.dsPrimary[i]
	if sp.compromised >= 0 {
		if p == sp.compromised {
			sc.status[v] = stDown
		} else {
			sc.status[v] = stUp
		}
		return
	}
	if p < 0 || !sc.lostSite[p] {
		sc.status[v] = stUp
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
		sc.status[v] = stFailover
	} else {
		sc.status[v] = stDown
	}
}

// rootReason says why node v is itself down or degraded in sp.
func (g *graph) rootReason(sp *spec, sc *scratch, v int32) string {
	if r := sc.reason[v]; r != "" {
		return r
	}
	var r string
	if int(v) < g.nsvc {
		switch {
		case sc.remCnt[v] <= 0:
			r = "no endpoint outside " + sp.where
		case sc.status[v] == stDown:
			r = "no capacity outside " + sp.where
		default:
			r = "capacity " + strconv.FormatInt(sc.remCap[v], 10) + " of peak " + strconv.FormatInt(g.peak[v], 10) + " outside " + sp.where
		}
	} else {
		r = g.datastoreReason(sp, sc, v)
	}
	sc.reason[v] = r
	sc.reasonSet = append(sc.reasonSet, v)
	return r
}

func (g *graph) datastoreReason(sp *spec, sc *scratch, v int32) string {
	i := int(v) - g.nsvc
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
	switch sc.status[v] {
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

// chain writes the chain from v to its root cause into links, which must
// have room for sc.depth[v] entries, and returns it.
func (g *graph) chain(sp *spec, sc *scratch, v int32, links []Link) []Link {
	links = links[:0]
	hard := true
	for {
		l := Link{Name: g.names[v], Hard: hard}
		if int(v) >= g.nsvc {
			l.Type = LinkDatastore
		}
		c := sc.cause[v]
		if c < 0 {
			l.Reason = g.rootReason(sp, sc, v)
			return append(links, l)
		}
		if len(links)+1 >= cap(links) {
			// Only a dependency cycle, which the parser rejects, gets here.
			l.Reason = "dependency cycle"
			return append(links, l)
		}
		links = append(links, l)
		hard = sc.causeHard[v]
		v = c
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
