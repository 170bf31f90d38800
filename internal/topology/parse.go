package topology

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/firebreak/firebreak/internal/yamlnode"
)

// MaxFileSize bounds what Load reads (a 100,000-endpoint topology is ~10 MiB).
const MaxFileSize = 256 << 20

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("load topology %s: file is %d bytes, more than the %d allowed", path, fi.Size(), MaxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a topology. file is used in error messages. The
// error, if any, is a yamlnode.ErrorList holding every problem found.
func Parse(file string, data []byte) (*Topology, error) {
	d := yamlnode.NewDecoder(file)
	root := d.Parse(data)
	t := &Topology{Source: file}
	if root != nil {
		p := &parser{d: d, t: t}
		p.top(root)
		t.Index()
		p.validate()
	}
	if err := d.Errs.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

type parser struct {
	d *yamlnode.Decoder
	t *Topology
	// positions of reference nodes, for validation messages
	refs []ref
}

// ref is a name that must resolve to a site, service or datastore.
type ref struct {
	kind string // "site", "service", "dependency", "datastore"
	name string
	pos  Pos
	what string
}

func pos(n *yaml.Node) Pos {
	l, c := yamlnode.Pos(n)
	return Pos{l, c}
}

func (p *parser) top(root *yaml.Node) {
	d, t := p.d, p.t
	t.DNS.TTL = DefaultTTL
	t.Decide = Decide{MaxAutoEvacuatedSites: DefaultMaxAutoEvacuatedSites, HoldDown: DefaultHoldDown}
	d.Mapping(root, "topology", map[string]yamlnode.Field{
		"name":  func(_, v *yaml.Node) { t.Name = d.Text(v, "name") },
		"sites": func(_, v *yaml.Node) { p.sites(v) },
		"nodes": func(_, v *yaml.Node) { p.nodes(v) },
		"dns":   func(_, v *yaml.Node) { p.dns(v) },
		"decide": func(_, v *yaml.Node) {
			d.Mapping(v, "decide", map[string]yamlnode.Field{
				"maxAutoEvacuatedSites": func(_, v *yaml.Node) {
					t.Decide.MaxAutoEvacuatedSites = d.Int(v, "decide.maxAutoEvacuatedSites", 0, 1000)
				},
				"holdDown": func(_, v *yaml.Node) { t.Decide.HoldDown = d.Duration(v, "decide.holdDown") },
			})
		},
		"store":      func(_, v *yaml.Node) { p.store(v) },
		"services":   func(_, v *yaml.Node) { p.services(v) },
		"datastores": func(_, v *yaml.Node) { p.datastores(v) },
		"customers":  func(_, v *yaml.Node) { p.customers(v) },
	})
}

func (p *parser) sites(n *yaml.Node) {
	d := p.d
	d.Entries(n, "site", func(name string, k, v *yaml.Node) {
		s := &Site{Name: name, Role: RoleDatacenter, Pos: pos(k)}
		checkName(d, k, "site", name)
		d.Mapping(v, "site "+name, map[string]yamlnode.Field{
			"role":    func(_, v *yaml.Node) { s.Role = d.Enum(v, "site "+name+" role", RoleDatacenter, RoleWitness) },
			"region":  func(_, v *yaml.Node) { s.Region = d.String(v, "site "+name+" region") },
			"zone":    func(_, v *yaml.Node) { s.Region = d.String(v, "site "+name+" zone") },
			"racks":   func(_, v *yaml.Node) { s.Racks = d.Strings(v, "site "+name+" racks") },
			"subnets": func(_, v *yaml.Node) { s.Subnets = d.Strings(v, "site "+name+" subnets") },
		})
		if s.Role == "" {
			s.Role = RoleDatacenter
		}
		p.t.Sites = append(p.t.Sites, s)
	})
}

func (p *parser) nodes(n *yaml.Node) {
	d := p.d
	d.Seq(n, "nodes", func(i int, it *yaml.Node) {
		nd := &Node{Pos: pos(it)}
		what := fmt.Sprintf("node %d", i+1)
		d.Mapping(it, what, map[string]yamlnode.Field{
			"name": func(_, v *yaml.Node) { nd.Name = d.String(v, what+" name") },
			"site": func(_, v *yaml.Node) {
				nd.Site = d.String(v, what+" site")
				p.refs = append(p.refs, ref{"site", nd.Site, pos(v), what + " site"})
			},
			"api":    func(_, v *yaml.Node) { nd.API = d.String(v, what+" api") },
			"dns":    func(_, v *yaml.Node) { nd.DNS = d.String(v, what+" dns") },
			"peer":   func(_, v *yaml.Node) { nd.Peer = d.String(v, what+" peer") },
			"client": func(_, v *yaml.Node) { nd.Client = d.String(v, what+" client") },
		})
		if nd.Name == "" {
			d.Errorf(it, "%s: missing name", what)
		}
		if nd.Site == "" {
			d.Errorf(it, "%s: missing site", what)
		}
		p.t.Nodes = append(p.t.Nodes, nd)
	})
}

func (p *parser) dns(n *yaml.Node) {
	d, t := p.d, p.t
	t.DNS.Pos = pos(n)
	d.Mapping(n, "dns", map[string]yamlnode.Field{
		"zone": func(_, v *yaml.Node) {
			z := d.String(v, "dns zone")
			if z != "" && !strings.HasSuffix(z, ".") {
				z += "."
			}
			if z != "" && !validDNSName(z) {
				d.Errorf(v, "dns zone: %q is not a valid domain name", z)
			}
			t.DNS.Zone = strings.ToLower(z)
		},
		"ttl":         func(_, v *yaml.Node) { t.DNS.TTL = d.Duration(v, "dns ttl") },
		"secondaries": func(_, v *yaml.Node) { t.DNS.Secondaries = d.Strings(v, "dns secondaries") },
	})
}

func (p *parser) store(n *yaml.Node) {
	d, s := p.d, &p.t.Store
	s.Pos = pos(n)
	d.Mapping(n, "store", map[string]yamlnode.Field{
		"endpoints": func(_, v *yaml.Node) { s.Endpoints = d.Strings(v, "store endpoints") },
		"caFile":    func(_, v *yaml.Node) { s.CAFile = d.String(v, "store caFile") },
		"certFile":  func(_, v *yaml.Node) { s.CertFile = d.String(v, "store certFile") },
		"keyFile":   func(_, v *yaml.Node) { s.KeyFile = d.String(v, "store keyFile") },
	})
}

func (p *parser) services(n *yaml.Node) {
	d := p.d
	d.Entries(n, "service", func(name string, k, v *yaml.Node) {
		checkName(d, k, "service", name)
		s := &Service{Name: name, Kind: KindApp, Tier: DefaultTier, Policy: PolicyActiveActive, Pos: pos(k)}
		s.Check = Check{Type: CheckTCP}
		what := "service " + name
		var failoverNode *yaml.Node
		d.Mapping(v, what, map[string]yamlnode.Field{
			"kind":        func(_, v *yaml.Node) { s.Kind = d.Enum(v, what+" kind", KindApp, KindOps) },
			"tier":        func(_, v *yaml.Node) { s.Tier = d.Int(v, what+" tier", 0, 3) },
			"public":      func(_, v *yaml.Node) { s.Public = d.String(v, what+" public") },
			"description": func(_, v *yaml.Node) { s.Description = d.String(v, what+" description") },
			"dnsName": func(_, v *yaml.Node) {
				s.DNSName = strings.ToLower(d.String(v, what+" dnsName"))
			},
			"aliases": func(_, v *yaml.Node) { s.Aliases = d.Strings(v, what+" aliases") },
			"policy": func(_, v *yaml.Node) {
				s.Policy = d.Enum(v, what+" policy", PolicyActiveActive, PolicyFailover, PolicyWeighted, PolicyNearest)
			},
			"failover": func(_, v *yaml.Node) {
				failoverNode = v
				s.Failover = d.Strings(v, what+" failover")
			},
			"peak":      func(_, v *yaml.Node) { s.Peak = d.Int(v, what+" peak", 0, 1<<30) },
			"rto":       func(_, v *yaml.Node) { s.RTO = d.Duration(v, what+" rto") },
			"rpo":       func(_, v *yaml.Node) { s.RPO = d.Duration(v, what+" rpo") },
			"check":     func(_, v *yaml.Node) { p.check(v, what, &s.Check) },
			"endpoints": func(_, v *yaml.Node) { p.endpoints(v, s) },
			"dependsOn": func(_, v *yaml.Node) { p.deps(v, s) },
		})
		for _, f := range s.Failover {
			p.refs = append(p.refs, ref{"site", f, pos(failoverNode), what + " failover"})
		}
		s.Check.applyDefaults()
		if s.DNSName == "" {
			s.DNSName = strings.ToLower(name)
		}
		p.t.Services = append(p.t.Services, s)
	})
}

func (p *parser) check(n *yaml.Node, svc string, c *Check) {
	d := p.d
	what := svc + " check"
	types := 0
	setType := func(k *yaml.Node, typ string) {
		types++
		if types > 1 {
			d.Errorf(k, "%s: more than one check type; expected exactly one of http, https, tcp, dns, grpc, exec", what)
		}
		c.Type = typ
	}
	httpFields := func(typ string) yamlnode.Field {
		return func(k, v *yaml.Node) {
			setType(k, typ)
			d.Mapping(v, what+" "+typ, map[string]yamlnode.Field{
				"path":     func(_, v *yaml.Node) { c.Path = d.String(v, what+" path") },
				"status":   func(_, v *yaml.Node) { c.Status = d.Int(v, what+" status", 100, 599) },
				"body":     func(_, v *yaml.Node) { c.Body = d.String(v, what+" body") },
				"insecure": func(_, v *yaml.Node) { c.Insecure = d.Bool(v, what+" insecure") },
			})
		}
	}
	d.Mapping(n, what, map[string]yamlnode.Field{
		"http":  httpFields(CheckHTTP),
		"https": httpFields(CheckHTTPS),
		"tcp": func(k, v *yaml.Node) {
			setType(k, CheckTCP)
			d.Mapping(v, what+" tcp", map[string]yamlnode.Field{})
		},
		"dns": func(k, v *yaml.Node) {
			setType(k, CheckDNS)
			d.Mapping(v, what+" dns", map[string]yamlnode.Field{
				"query": func(_, v *yaml.Node) { c.Query = d.String(v, what+" dns query") },
				"type": func(_, v *yaml.Node) {
					c.QType = d.Enum(v, what+" dns type", "A", "AAAA", "CNAME", "TXT", "SRV", "MX", "NS", "SOA")
				},
				"expect": func(_, v *yaml.Node) { c.Expect = d.Text(v, what+" dns expect") },
			})
		},
		"grpc": func(k, v *yaml.Node) {
			setType(k, CheckGRPC)
			d.Mapping(v, what+" grpc", map[string]yamlnode.Field{
				"service": func(_, v *yaml.Node) { c.GRPCService = d.String(v, what+" grpc service") },
			})
		},
		"exec": func(k, v *yaml.Node) {
			setType(k, CheckExec)
			d.Mapping(v, what+" exec", map[string]yamlnode.Field{
				"command": func(_, v *yaml.Node) { c.Command = d.Strings(v, what+" exec command") },
			})
			if len(c.Command) == 0 {
				d.Errorf(k, "%s: exec needs a command (a list: [program, arg, ...])", what)
			}
		},
		"interval": func(_, v *yaml.Node) { c.Interval = d.Duration(v, what+" interval") },
		"timeout":  func(_, v *yaml.Node) { c.Timeout = d.Duration(v, what+" timeout") },
		"rise":     func(_, v *yaml.Node) { c.Rise = d.Int(v, what+" rise", 1, 100) },
		"fall":     func(_, v *yaml.Node) { c.Fall = d.Int(v, what+" fall", 1, 100) },
	})
	c.applyDefaults()
	if c.Timeout > c.Interval {
		d.Errorf(n, "%s: timeout %s is longer than interval %s (expected timeout <= interval)", what, c.Timeout, c.Interval)
	}
}

func (p *parser) endpoints(n *yaml.Node, s *Service) {
	d := p.d
	d.Seq(n, "service "+s.Name+" endpoints", func(i int, it *yaml.Node) {
		e := &Endpoint{Service: s.Name, Weight: DefaultWeight, Capacity: DefaultCapacity, Pos: pos(it)}
		what := fmt.Sprintf("service %s endpoint %d", s.Name, i+1)
		var siteNode *yaml.Node
		hasPort := false
		d.Mapping(it, what, map[string]yamlnode.Field{
			"site": func(_, v *yaml.Node) {
				siteNode = v
				e.Site = d.String(v, what+" site")
			},
			"rack":    func(_, v *yaml.Node) { e.Rack = d.String(v, what+" rack") },
			"address": func(_, v *yaml.Node) { e.Address = d.Text(v, what+" address") },
			"port": func(_, v *yaml.Node) {
				hasPort = true
				e.Port = d.Int(v, what+" port", 1, 65535)
			},
			"weight":   func(_, v *yaml.Node) { e.Weight = d.Int(v, what+" weight", 0, 1<<20) },
			"capacity": func(_, v *yaml.Node) { e.Capacity = d.Int(v, what+" capacity", 0, 1<<30) },
		})
		if e.Site == "" {
			d.Errorf(it, "%s: missing site", what)
		} else {
			p.refs = append(p.refs, ref{"endpoint-site", e.Site, pos(siteNode), what})
		}
		if e.Address == "" {
			d.Errorf(it, "%s: missing address", what)
		}
		if !hasPort {
			d.Errorf(it, "%s: missing port (expected 1 to 65535)", what)
		}
		if e.Rack != "" {
			p.refs = append(p.refs, ref{"rack", e.Site + "\x00" + e.Rack, pos(it), what})
		}
		s.Endpoints = append(s.Endpoints, e)
	})
}

func (p *parser) deps(n *yaml.Node, s *Service) {
	d := p.d
	d.Seq(n, "service "+s.Name+" dependsOn", func(i int, it *yaml.Node) {
		what := fmt.Sprintf("service %s dependsOn %d", s.Name, i+1)
		dep := Dependency{Hard: true, Pos: pos(it)}
		r := d.Resolve(it)
		if r != nil && r.Kind == yaml.ScalarNode {
			// Short form: a bare name is a hard dependency.
			dep.Target = d.String(r, what)
		} else {
			set := 0
			d.Mapping(it, what, map[string]yamlnode.Field{
				"service":   func(_, v *yaml.Node) { set++; dep.Target = d.String(v, what+" service") },
				"datastore": func(_, v *yaml.Node) { set++; dep.Target = d.String(v, what+" datastore") },
				"hard":      func(_, v *yaml.Node) { dep.Hard = d.Bool(v, what+" hard") },
			})
			if set != 1 {
				d.Errorf(it, "%s: expected exactly one of service or datastore", what)
			}
		}
		if dep.Target != "" {
			p.refs = append(p.refs, ref{"dependency", dep.Target, dep.Pos, what})
			s.DependsOn = append(s.DependsOn, dep)
		}
	})
}

func (p *parser) datastores(n *yaml.Node) {
	d := p.d
	engines := []string{"postgres", "mysql", "redis", "mongodb", "cassandra", "kafka", "objectstore", "other"}
	d.Entries(n, "datastore", func(name string, k, v *yaml.Node) {
		checkName(d, k, "datastore", name)
		ds := &Datastore{Name: name, Tier: DefaultTier, Pos: pos(k)}
		what := "datastore " + name
		d.Mapping(v, what, map[string]yamlnode.Field{
			"engine": func(_, v *yaml.Node) { ds.Engine = d.Enum(v, what+" engine", engines...) },
			"tier":   func(_, v *yaml.Node) { ds.Tier = d.Int(v, what+" tier", 0, 3) },
			"primary": func(_, v *yaml.Node) {
				ds.Primary = d.String(v, what+" primary")
				p.refs = append(p.refs, ref{"endpoint-site", ds.Primary, pos(v), what + " primary"})
			},
			"address": func(_, v *yaml.Node) { ds.Address = d.Text(v, what+" address") },
			"port":    func(_, v *yaml.Node) { ds.Port = d.Int(v, what+" port", 1, 65535) },
			"dnsName": func(_, v *yaml.Node) { ds.DNSName = strings.ToLower(d.String(v, what+" dnsName")) },
			"rpo":     func(_, v *yaml.Node) { ds.RPO = d.Duration(v, what+" rpo") },
			"rto":     func(_, v *yaml.Node) { ds.RTO = d.Duration(v, what+" rto") },
			"replicas": func(_, v *yaml.Node) {
				d.Seq(v, what+" replicas", func(i int, it *yaml.Node) {
					r := Replica{Mode: ModeAsync, Pos: pos(it)}
					rw := fmt.Sprintf("%s replica %d", what, i+1)
					d.Mapping(it, rw, map[string]yamlnode.Field{
						"site": func(_, v *yaml.Node) {
							r.Site = d.String(v, rw+" site")
							p.refs = append(p.refs, ref{"endpoint-site", r.Site, pos(v), rw})
						},
						"mode":    func(_, v *yaml.Node) { r.Mode = d.Enum(v, rw+" mode", ModeSync, ModeAsync) },
						"address": func(_, v *yaml.Node) { r.Address = d.Text(v, rw+" address") },
						"port":    func(_, v *yaml.Node) { r.Port = d.Int(v, rw+" port", 1, 65535) },
					})
					if r.Site == "" {
						d.Errorf(it, "%s: missing site", rw)
					}
					ds.Replicas = append(ds.Replicas, r)
				})
			},
			"backups": func(_, v *yaml.Node) {
				d.Seq(v, what+" backups", func(i int, it *yaml.Node) {
					b := Backup{Pos: pos(it)}
					bw := fmt.Sprintf("%s backup %d", what, i+1)
					d.Mapping(it, bw, map[string]yamlnode.Field{
						"site": func(_, v *yaml.Node) {
							b.Site = d.String(v, bw+" site")
							p.refs = append(p.refs, ref{"site", b.Site, pos(v), bw})
						},
						"immutable": func(_, v *yaml.Node) { b.Immutable = d.Bool(v, bw+" immutable") },
						"every":     func(_, v *yaml.Node) { b.Every = d.Duration(v, bw+" every") },
					})
					if b.Site == "" {
						d.Errorf(it, "%s: missing site", bw)
					}
					ds.Backups = append(ds.Backups, b)
				})
			},
		})
		if ds.Engine == "" {
			ds.Engine = "other"
		}
		if ds.Primary == "" {
			d.Errorf(k, "%s: missing primary (the site of the primary)", what)
		}
		if ds.DNSName == "" {
			ds.DNSName = strings.ToLower(name)
		}
		p.t.Datastores = append(p.t.Datastores, ds)
	})
}

func (p *parser) customers(n *yaml.Node) {
	d := p.d
	d.Entries(n, "customer class", func(name string, k, v *yaml.Node) {
		c := &CustomerClass{Name: name, Pos: pos(k)}
		what := "customer class " + name
		d.Mapping(v, what, map[string]yamlnode.Field{
			"services": func(_, v *yaml.Node) {
				c.Services = d.Strings(v, what+" services")
				for _, s := range c.Services {
					p.refs = append(p.refs, ref{"dependency", s, pos(v), what + " services"})
				}
			},
			"count":      func(_, v *yaml.Node) { c.Count = d.Int(v, what+" count", 0, 1<<31-1) },
			"monthlyFee": func(_, v *yaml.Node) { c.MonthlyFee = d.Float(v, what+" monthlyFee", 0, 1e12) },
			"currency":   func(_, v *yaml.Node) { c.Currency = d.String(v, what+" currency") },
			"sla": func(_, v *yaml.Node) {
				d.Mapping(v, what+" sla", map[string]yamlnode.Field{
					"target": func(_, v *yaml.Node) { c.SLA.Target = d.Float(v, what+" sla target", 0, 100) },
					"credits": func(_, v *yaml.Node) {
						d.Seq(v, what+" sla credits", func(i int, it *yaml.Node) {
							var ct CreditTier
							cw := fmt.Sprintf("%s sla credit %d", what, i+1)
							d.Mapping(it, cw, map[string]yamlnode.Field{
								"below":   func(_, v *yaml.Node) { ct.Below = d.Float(v, cw+" below", 0, 100) },
								"percent": func(_, v *yaml.Node) { ct.Percent = d.Float(v, cw+" percent", 0, 100) },
							})
							c.SLA.Credits = append(c.SLA.Credits, ct)
						})
					},
				})
			},
		})
		if len(c.Services) == 0 {
			d.Errorf(k, "%s: expected at least one service", what)
		}
		p.t.Customers = append(p.t.Customers, c)
	})
}

// checkName refuses names that cannot be used as DNS labels or store keys.
func checkName(d *yamlnode.Decoder, k *yaml.Node, what, name string) {
	if !validLabel(name) {
		d.Errorf(k, "%s name %q: expected letters, digits, '-' and '_' (a DNS label, at most 63 characters, not starting or ending with '-')", what, name)
	}
}

func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

// applyDefaults fills unset check fields with their documented defaults.
func (c *Check) applyDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultCheckInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCheckTimeout
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if (c.Type == CheckHTTP || c.Type == CheckHTTPS) && c.Path == "" {
		c.Path = "/"
	}
	if (c.Type == CheckHTTP || c.Type == CheckHTTPS) && c.Status == 0 {
		c.Status = 200
	}
	if c.Type == CheckDNS && c.QType == "" {
		c.QType = "A"
	}
}
