package probe

import (
	"sort"

	"github.com/firebreak/firebreak/internal/topology"
)

// DefaultOtherSites is how many sites other than an endpoint's own watch it
// (when that many sites have a live node).
const DefaultOtherSites = 2

// Assignment maps each endpoint ID to the nodes that must observe it, sorted
// by name.
type Assignment map[string][]string

// Assign decides which live nodes observe which endpoints. Every endpoint is
// watched by every live node of its own site, plus one live node in each of
// `others` other sites (DefaultOtherSites when others <= 0), or in every other
// site with a live node when fewer exist. Sites and nodes are chosen by
// rendezvous (highest-random-weight) hashing of the endpoint ID, so the result
// depends only on the topology and the live set, every node computes the
// same answer, and when a node dies only the endpoints it watched move.
//
// live holds the names of live nodes; nodes not in the topology are ignored.
func Assign(t *topology.Topology, live map[string]bool, others int) Assignment {
	if others <= 0 {
		others = DefaultOtherSites
	}
	bySite := map[string][]string{}
	var sites []string
	for _, n := range t.Nodes {
		if !live[n.Name] {
			continue
		}
		if _, ok := bySite[n.Site]; !ok {
			sites = append(sites, n.Site)
		}
		bySite[n.Site] = append(bySite[n.Site], n.Name)
	}
	eps := t.Endpoints()
	out := make(Assignment, len(eps))
	type scored struct {
		site  string
		score uint64
	}
	top := make([]scored, 0, others+1)
	for _, ep := range eps {
		id := ep.ID()
		obs := make([]string, 0, len(bySite[ep.Site])+others)
		obs = append(obs, bySite[ep.Site]...)
		// Top `others` sites by rendezvous score (insertion into a short list).
		top = top[:0]
		for _, s := range sites {
			if s == ep.Site {
				continue
			}
			c := scored{s, hrw(id, s)}
			i := len(top)
			for i > 0 && (top[i-1].score < c.score || (top[i-1].score == c.score && top[i-1].site > c.site)) {
				i--
			}
			if i >= others {
				continue
			}
			top = append(top, scored{})
			copy(top[i+1:], top[i:])
			top[i] = c
			if len(top) > others {
				top = top[:others]
			}
		}
		for _, c := range top {
			obs = append(obs, pickNode(id, bySite[c.site]))
		}
		sort.Strings(obs)
		out[id] = obs
	}
	return out
}

// For returns the endpoint IDs assigned to node, sorted.
func (a Assignment) For(node string) []string {
	var out []string
	for id, obs := range a {
		for _, o := range obs {
			if o == node {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Has reports whether node observes endpoint id.
func (a Assignment) Has(id, node string) bool {
	for _, o := range a[id] {
		if o == node {
			return true
		}
	}
	return false
}

func pickNode(id string, nodes []string) string {
	best, bestScore := "", uint64(0)
	for _, n := range nodes {
		if s := hrw(id, n); best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}

// hrw is the rendezvous weight of (key, member): FNV-1a over key, a zero
// byte and member, then a 64-bit finaliser.
func hrw(key, member string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	h *= prime // the zero separator
	for i := 0; i < len(member); i++ {
		h ^= uint64(member[i])
		h *= prime
	}
	return mix(h)
}

// mix is a 64-bit finaliser (splitmix64) so nearby inputs spread.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
