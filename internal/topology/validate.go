package topology

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/firebreak/firebreak/internal/yamlnode"
)

// validate checks cross references once every section decoded cleanly.
func (p *parser) validate() {
	d, t := p.d, p.t
	errAt := func(at Pos, format string, args ...any) {
		d.Errs = append(d.Errs, errAtPos(d.File, at, format, args...))
	}

	siteNames := make([]string, 0, len(t.Sites))
	for _, s := range t.Sites {
		siteNames = append(siteNames, s.Name)
	}
	if len(t.Sites) == 0 {
		errAt(Pos{1, 1}, "topology: no sites declared (expected a sites: mapping with at least one datacenter)")
	}
	for _, s := range t.Sites {
		for _, cidr := range s.Subnets {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				errAt(s.Pos, "site %s subnets: %q is not a CIDR (expected e.g. 10.1.0.0/16)", s.Name, cidr)
			}
		}
	}

	// Names shared by services and datastores must be unique: dependencies
	// name either.
	for _, ds := range t.Datastores {
		if t.Service(ds.Name) != nil {
			errAt(ds.Pos, "datastore %s: a service has the same name (service and datastore names must be unique)", ds.Name)
		}
	}

	for _, r := range p.refs {
		if r.name == "" || r.name == "\x00" {
			continue // already reported as missing or malformed
		}
		switch r.kind {
		case "site", "endpoint-site":
			s := t.Site(r.name)
			if s == nil {
				errAt(r.pos, "%s: unknown site %q (expected one of: %s)", r.what, r.name, strings.Join(siteNames, ", "))
				continue
			}
			if r.kind == "endpoint-site" && s.Role == RoleWitness {
				errAt(r.pos, "%s: site %q is a witness and cannot host endpoints or datastores (expected a datacenter site)", r.what, r.name)
			}
		case "rack":
			site, rack, _ := strings.Cut(r.name, "\x00")
			s := t.Site(site)
			if s == nil {
				continue
			}
			if !contains(s.Racks, rack) {
				if len(s.Racks) == 0 {
					errAt(r.pos, "%s: rack %q is not declared (site %s declares no racks; add racks: [...] to it)", r.what, rack, site)
				} else {
					errAt(r.pos, "%s: unknown rack %q in site %s (expected one of: %s)", r.what, rack, site, strings.Join(s.Racks, ", "))
				}
			}
		case "dependency":
			if t.Service(r.name) == nil && t.Datastore(r.name) == nil {
				errAt(r.pos, "%s: unknown service or datastore %q", r.what, r.name)
			}
		}
	}

	nodeNames := map[string]bool{}
	for _, n := range t.Nodes {
		if nodeNames[n.Name] {
			errAt(n.Pos, "duplicate node name %q", n.Name)
		}
		nodeNames[n.Name] = true
		for _, hp := range []struct{ what, v string }{{"api", n.API}, {"dns", n.DNS}} {
			if hp.v == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(hp.v); err != nil || port == "" {
				errAt(n.Pos, "node %s %s: %q is not host:port", n.Name, hp.what, hp.v)
			}
		}
		for _, u := range []struct{ what, v string }{{"peer", n.Peer}, {"client", n.Client}} {
			if u.v == "" {
				continue
			}
			pu, err := url.Parse(u.v)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				errAt(n.Pos, "node %s %s: %q is not a URL (expected http(s)://host:port)", n.Name, u.what, u.v)
			}
		}
	}
	for _, e := range t.Store.Endpoints {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(e, "https://"), "http://")); err != nil {
			errAt(t.Store.Pos, "store endpoints: %q is not host:port or a URL", e)
		}
	}

	dnsNames := map[string]string{}
	claim := func(name, owner string, at Pos) {
		if prev, ok := dnsNames[name]; ok && prev != owner {
			errAt(at, "%s: DNS name %q is already used by %s", owner, name, prev)
			return
		}
		dnsNames[name] = owner
	}
	for _, s := range t.Services {
		claim(s.DNSName, "service "+s.Name, s.Pos)
		for _, a := range s.Aliases {
			claim(strings.ToLower(a), "service "+s.Name, s.Pos)
		}
		seen := map[string]bool{}
		for _, e := range s.Endpoints {
			key := e.Site + "/" + e.Address + ":" + itoa(e.Port)
			if seen[key] {
				errAt(e.Pos, "service %s: duplicate endpoint %s:%d in site %s", s.Name, e.Address, e.Port, e.Site)
			}
			seen[key] = true
		}
		if s.Policy == PolicyFailover {
			for _, f := range s.Failover {
				found := false
				for _, e := range s.Endpoints {
					if e.Site == f {
						found = true
					}
				}
				if !found && t.Site(f) != nil {
					errAt(s.Pos, "service %s failover: site %q has no endpoint of this service", s.Name, f)
				}
			}
		} else if len(s.Failover) > 0 {
			errAt(s.Pos, "service %s: failover order given but policy is %s (expected policy: failover)", s.Name, s.Policy)
		}
	}
	for _, ds := range t.Datastores {
		claim(ds.DNSName, "datastore "+ds.Name, ds.Pos)
	}
	for _, c := range t.Customers {
		sort.SliceStable(c.SLA.Credits, func(i, j int) bool { return c.SLA.Credits[i].Below > c.SLA.Credits[j].Below })
	}

	p.cycles()
}

// cycles reports every dependency cycle among services, printing the cycle.
func (p *parser) cycles() {
	t := p.t
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(s *Service)
	visit = func(s *Service) {
		color[s.Name] = grey
		stack = append(stack, s.Name)
		for _, dep := range s.DependsOn {
			next := t.Service(dep.Target)
			if next == nil {
				continue // datastores have no dependencies
			}
			switch color[next.Name] {
			case white:
				visit(next)
			case grey:
				i := len(stack) - 1
				for i >= 0 && stack[i] != next.Name {
					i--
				}
				cyc := append(append([]string{}, stack[i:]...), next.Name)
				key := canonicalCycle(cyc)
				if !reported[key] {
					reported[key] = true
					p.d.Errs = append(p.d.Errs, errAtPos(p.d.File, dep.Pos,
						"service %s: dependency cycle %s (expected dependencies to form no cycle)", s.Name, strings.Join(cyc, " -> ")))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[s.Name] = black
	}
	for _, s := range t.Services {
		if color[s.Name] == white {
			visit(s)
		}
	}
}

func canonicalCycle(c []string) string {
	c = c[:len(c)-1]
	min := 0
	for i := range c {
		if c[i] < c[min] {
			min = i
		}
	}
	return strings.Join(append(append([]string{}, c[min:]...), c[:min]...), ",")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func errAtPos(file string, at Pos, format string, args ...any) yamlnode.Error {
	return yamlnode.Error{File: file, Line: at.Line, Col: at.Col, Msg: fmt.Sprintf(format, args...)}
}
