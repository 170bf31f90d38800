// Package topogen generates large synthetic topologies for benchmarks and
// load tests: thousands of services over many sites, with a layered,
// skewed dependency graph (a few popular services that most others need,
// as login was in 2022), datastores with replicas and backups, and a small
// share of single-site services so that analysis has something to find.
//
// Generation is deterministic for a given Config (including Seed). The
// result is a *topology.Topology ready to use (indexed) and Write renders
// it as YAML that topology.Parse accepts.
package topogen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// Config shapes a generated topology. Zero fields take the documented
// defaults.
type Config struct {
	// Services is the number of services (default 1000).
	Services int
	// Sites is the number of datacenter sites (default 5).
	Sites int
	// EndpointsPerService is the endpoints of each service (default 10).
	EndpointsPerService int
	// AvgDeps is the mean number of dependencies per service (default 5).
	AvgDeps float64
	// Depth is the number of dependency layers: the longest chain has
	// Depth services (default 8).
	Depth int
	// Datastores is the number of datastores (default Services/10, at
	// least 1).
	Datastores int
	// SingleSite is the share of services whose endpoints are all in one
	// site (default 0.02; negative means none).
	SingleSite float64
	// RacksPerSite declares that many racks in every site and spreads
	// endpoints over them (default 0: no racks).
	RacksPerSite int
	// Seed seeds the generator (default 1).
	Seed uint64
}

func (c *Config) defaults() {
	if c.Services <= 0 {
		c.Services = 1000
	}
	if c.Sites <= 0 {
		c.Sites = 5
	}
	if c.EndpointsPerService <= 0 {
		c.EndpointsPerService = 10
	}
	if c.AvgDeps <= 0 {
		c.AvgDeps = 5
	}
	if c.Depth <= 0 {
		c.Depth = 8
	}
	if c.Datastores <= 0 {
		c.Datastores = max(1, c.Services/10)
	}
	if c.SingleSite == 0 {
		c.SingleSite = 0.02
	}
	if c.SingleSite < 0 {
		c.SingleSite = 0
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Generate builds a topology as described by c.
func Generate(c Config) *topology.Topology {
	c.defaults()
	r := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	t := &topology.Topology{
		Source: "generated",
		Name:   fmt.Sprintf("synthetic-%ds-%dsites", c.Services, c.Sites),
		DNS:    topology.DNS{Zone: "svc.synthetic.example.", TTL: topology.DefaultTTL},
		Decide: topology.Decide{MaxAutoEvacuatedSites: topology.DefaultMaxAutoEvacuatedSites, HoldDown: topology.DefaultHoldDown},
	}
	for i := 0; i < c.Sites; i++ {
		s := &topology.Site{Name: fmt.Sprintf("dc%02d", i+1), Role: topology.RoleDatacenter}
		for k := 0; k < c.RacksPerSite; k++ {
			s.Racks = append(s.Racks, fmt.Sprintf("r%02d", k+1))
		}
		t.Sites = append(t.Sites, s)
		t.Nodes = append(t.Nodes, &topology.Node{
			Name: "fb-" + s.Name, Site: s.Name,
			API: fmt.Sprintf("10.%d.0.5:7480", i), DNS: fmt.Sprintf("10.%d.0.5:53", i),
		})
	}

	for i := 0; i < c.Datastores; i++ {
		p := r.IntN(c.Sites)
		d := &topology.Datastore{
			Name: fmt.Sprintf("ds-%05d", i+1), Engine: "postgres", Tier: r.IntN(4),
			Primary: t.Sites[p].Name, RPO: 0,
		}
		d.DNSName = d.Name
		if r.Float64() < 0.5 {
			d.RPO = time.Minute
		}
		if c.Sites > 1 && r.Float64() >= 0.05 {
			n := 1 + r.IntN(2)
			for k := 1; k <= n && k < c.Sites; k++ {
				mode := topology.ModeAsync
				if k == 1 && r.Float64() < 0.8 {
					mode = topology.ModeSync
				}
				d.Replicas = append(d.Replicas, topology.Replica{Site: t.Sites[(p+k)%c.Sites].Name, Mode: mode})
			}
		}
		b := (p + 1) % c.Sites
		d.Backups = append(d.Backups, topology.Backup{Site: t.Sites[b].Name, Immutable: r.Float64() < 0.7, Every: time.Hour})
		t.Datastores = append(t.Datastores, d)
	}

	// Services are laid out in Depth layers; layer 0 depends only on
	// datastores, layer L on layers below it, one dependency always on
	// layer L-1 so that chains reach the full depth.
	perLayer := (c.Services + c.Depth - 1) / c.Depth
	layerOf := func(i int) int { return i / perLayer }
	addr := 0
	for i := 0; i < c.Services; i++ {
		s := &topology.Service{
			Name: fmt.Sprintf("svc-%05d", i+1), Kind: topology.KindApp, Tier: tier(r),
			Policy: topology.PolicyActiveActive, RTO: 5 * time.Minute,
			Check: topology.Check{Type: topology.CheckTCP, Interval: topology.DefaultCheckInterval,
				Timeout: topology.DefaultCheckTimeout, Rise: topology.DefaultRise, Fall: topology.DefaultFall},
		}
		s.DNSName = s.Name
		if r.Float64() < 0.01 {
			s.Kind = topology.KindOps
		}
		spread := 1
		if r.Float64() >= c.SingleSite && c.Sites > 1 {
			spread = 2 + r.IntN(min(3, c.Sites-1))
		}
		first := r.IntN(c.Sites)
		total := 0
		for k := 0; k < c.EndpointsPerService; k++ {
			si := (first + k%spread) % c.Sites
			e := &topology.Endpoint{
				Service: s.Name, Site: t.Sites[si].Name,
				Address: fmt.Sprintf("10.%d.%d.%d", 64+addr>>16&63, addr>>8&255, addr&255),
				Port:    8080, Weight: 1, Capacity: 10,
			}
			if c.RacksPerSite > 0 {
				e.Rack = t.Sites[si].Racks[(addr/c.Sites)%c.RacksPerSite]
			}
			addr++
			total += e.Capacity
			s.Endpoints = append(s.Endpoints, e)
		}
		// N+1 on sites for most services; a tenth are sized too tight. A
		// tenth of the multi-site ones are active/standby (failover policy),
		// each site sized for the peak.
		s.Peak = total * (spread - 1) / spread
		if spread == 1 || r.Float64() < 0.1 {
			s.Peak = total * 9 / 10
		}
		if spread > 1 && r.Float64() < 0.1 {
			s.Policy = topology.PolicyFailover
			s.Peak = total / spread
		}

		layer := layerOf(i)
		ndeps := r.IntN(int(2*c.AvgDeps)) + 1
		seen := map[string]bool{}
		for k := 0; k < ndeps; k++ {
			var target string
			switch {
			case layer == 0 || r.Float64() < 0.2:
				target = t.Datastores[skewed(r, c.Datastores)].Name
			case k == 0:
				target = t.Services[(layer-1)*perLayer+skewed(r, perLayer)].Name
			default:
				target = t.Services[skewed(r, layer*perLayer)].Name
			}
			if seen[target] {
				continue
			}
			seen[target] = true
			s.DependsOn = append(s.DependsOn, topology.Dependency{Target: target, Hard: r.Float64() < 0.6})
		}
		t.Services = append(t.Services, s)
	}
	t.Index()
	return t
}

// tier draws a tier: 5 % tier 0, 15 % tier 1, 50 % tier 2, 30 % tier 3.
func tier(r *rand.Rand) int {
	switch x := r.Float64(); {
	case x < 0.05:
		return 0
	case x < 0.20:
		return 1
	case x < 0.70:
		return 2
	default:
		return 3
	}
}

// skewed picks an index in [0, n) with a strong bias to small indices, so a
// few targets are needed by many (the shared login of 2022).
func skewed(r *rand.Rand, n int) int {
	x := r.Float64()
	return int(x * x * x * float64(n))
}
