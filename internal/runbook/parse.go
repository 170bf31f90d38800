package runbook

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

// MaxFileSize bounds each file Load reads.
const MaxFileSize = 256 << 20

// ReadFile reads a file a runbook refers to (its topology, its inventory).
type ReadFile func(path string) ([]byte, error)

// Load reads the runbook at path and the files it refers to. It returns the
// runbook and every file read (path to content), which a run stores so that
// any node can rebuild the same plan.
func Load(path string) (*Runbook, map[string][]byte, error) {
	files := map[string][]byte{}
	read := func(p string) ([]byte, error) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Size() > MaxFileSize {
			return nil, fmt.Errorf("%s: file is %d bytes, more than the %d allowed", p, fi.Size(), MaxFileSize)
		}
		b, err := os.ReadFile(p)
		if err == nil {
			files[p] = b
		}
		return b, err
	}
	data, err := read(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load runbook: %w", err)
	}
	rb, err := Parse(path, data, read)
	if err != nil {
		return nil, nil, err
	}
	return rb, files, nil
}

// FilesReader returns a ReadFile serving files (as returned by Load).
func FilesReader(files map[string][]byte) ReadFile {
	return func(p string) ([]byte, error) {
		b, ok := files[p]
		if !ok {
			return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
		}
		return b, nil
	}
}

// Parse parses and validates a runbook. file is used in error messages and
// to resolve the relative paths of the topology and inventory files, which
// read loads (nil: refuse them). The error, if any, is a yamlnode.ErrorList
// holding every problem found, or the topology's own errors.
func Parse(file string, data []byte, read ReadFile) (*Runbook, error) {
	d := yamlnode.NewDecoder(file)
	root := d.Parse(data)
	rb := &Runbook{Source: file, Limits: Limits{Global: DefaultGlobalLimit}}
	if root == nil {
		return nil, d.Errs.Err()
	}
	p := &parser{d: d, rb: rb, read: read, dir: filepath.Dir(file)}
	var topoNode, invNode *yaml.Node
	d.Mapping(root, "runbook file", map[string]yamlnode.Field{
		"runbook":     func(_, v *yaml.Node) { rb.Name = d.String(v, "runbook") },
		"description": func(_, v *yaml.Node) { rb.Description = d.String(v, "description") },
		"topology":    func(_, v *yaml.Node) { topoNode = v },
		"inventory":   func(_, v *yaml.Node) { invNode = v },
		"limits":      func(_, v *yaml.Node) { p.limits(v) },
		"drivers":     func(_, v *yaml.Node) { p.drivers(v) },
		"steps":       func(_, v *yaml.Node) { p.steps(v) },
	})
	if rb.Name == "" {
		d.Errorf(root, "runbook file: missing runbook (the runbook's name)")
	} else if !nameRE.MatchString(rb.Name) {
		d.Errorf(root, "runbook: %q is not a valid name (expected letters, digits, '-', '_', '.')", rb.Name)
	}
	if topoNode != nil {
		p.topology(topoNode)
	}
	if invNode != nil {
		p.inventory(invNode)
	}
	if len(rb.Steps) == 0 {
		d.Errorf(root, "runbook file: no steps (expected steps: a list of at least one step)")
	}
	p.validate()
	if err := d.Errs.Err(); err != nil {
		return nil, err
	}
	return rb, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

type parser struct {
	d    *yamlnode.Decoder
	rb   *Runbook
	read ReadFile
	dir  string
	// nodes kept for validation messages
	selNodes map[*Step]*yaml.Node
	siteRefs []siteRef
}

type siteRef struct {
	name string
	n    *yaml.Node
}

func pos(n *yaml.Node) Pos {
	l, c := yamlnode.Pos(n)
	return Pos{l, c}
}

func (p *parser) path(v *yaml.Node, what string) string {
	s := p.d.String(v, what)
	if s == "" {
		return ""
	}
	if p.read == nil {
		p.d.Errorf(v, "%s: files cannot be read here", what)
		return ""
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.dir, s)
	}
	return s
}

func (p *parser) topology(v *yaml.Node) {
	path := p.path(v, "topology")
	if path == "" {
		return
	}
	data, err := p.read(path)
	if err != nil {
		p.d.Errorf(v, "topology: %v", err)
		return
	}
	t, err := topology.Parse(path, data)
	if err != nil {
		if l, ok := yamlnode.AsList(err); ok {
			p.d.Errs = append(p.d.Errs, l...)
		} else {
			p.d.Errorf(v, "topology: %v", err)
		}
		return
	}
	p.rb.Topology = t
}

func (p *parser) inventory(v *yaml.Node) {
	r := p.d.Resolve(v)
	if r != nil && r.Kind == yaml.ScalarNode {
		path := p.path(v, "inventory")
		if path == "" {
			return
		}
		data, err := p.read(path)
		if err != nil {
			p.d.Errorf(v, "inventory: %v", err)
			return
		}
		sub := yamlnode.NewDecoder(path)
		root := sub.Parse(data)
		if root != nil {
			sp := &parser{d: sub, rb: p.rb}
			sp.inventoryMap(root)
			p.siteRefs = append(p.siteRefs, sp.siteRefs...)
		}
		p.d.Errs = append(p.d.Errs, sub.Errs...)
		return
	}
	p.inventoryMap(v)
}

func (p *parser) inventoryMap(v *yaml.Node) {
	d := p.d
	seen := map[string]bool{}
	d.Mapping(v, "inventory", map[string]yamlnode.Field{
		"servers": func(_, v *yaml.Node) {
			d.Seq(v, "inventory servers", func(i int, it *yaml.Node) {
				s := &Server{Tier: DefaultServerTier, Pos: pos(it)}
				what := fmt.Sprintf("server %d", i+1)
				d.Mapping(it, what, map[string]yamlnode.Field{
					"name": func(_, v *yaml.Node) {
						s.Name = d.String(v, what+" name")
						if s.Name != "" && seen[s.Name] {
							d.Errorf(v, "%s: duplicate server name %q", what, s.Name)
						}
						seen[s.Name] = true
					},
					"site": func(_, v *yaml.Node) {
						s.Site = d.String(v, what+" site")
						p.siteRefs = append(p.siteRefs, siteRef{s.Site, v})
					},
					"rack":   func(_, v *yaml.Node) { s.Rack = d.Text(v, what+" rack") },
					"role":   func(_, v *yaml.Node) { s.Role = d.String(v, what+" role") },
					"tier":   func(_, v *yaml.Node) { s.Tier = d.Int(v, what+" tier", 0, 3) },
					"labels": func(_, v *yaml.Node) { s.Labels = d.StringMap(v, what+" labels") },
					"bmc":    func(_, v *yaml.Node) { s.BMC = d.String(v, what+" bmc") },
					"ssh":    func(_, v *yaml.Node) { s.SSH = d.Text(v, what+" ssh") },
				})
				if s.Name == "" {
					d.Errorf(it, "%s: missing name", what)
				} else if !nameRE.MatchString(s.Name) {
					d.Errorf(it, "%s: %q is not a valid name", what, s.Name)
				}
				if s.Site == "" {
					d.Errorf(it, "%s: missing site", what)
				}
				p.rb.Servers = append(p.rb.Servers, s)
			})
		},
	})
}

func (p *parser) limits(v *yaml.Node) {
	d, l := p.d, &p.rb.Limits
	d.Mapping(v, "limits", map[string]yamlnode.Field{
		"global":  func(_, v *yaml.Node) { l.Global = d.Int(v, "limits global", 1, 1<<20) },
		"perSite": func(_, v *yaml.Node) { l.PerSite = d.Int(v, "limits perSite", 0, 1<<20) },
		"perRack": func(_, v *yaml.Node) { l.PerRack = d.Int(v, "limits perRack", 0, 1<<20) },
		"perDriver": func(_, v *yaml.Node) {
			l.PerDriver = map[string]int{}
			d.Entries(v, "driver limit", func(name string, _, v *yaml.Node) {
				l.PerDriver[name] = d.Int(v, "limits perDriver "+name, 0, 1<<20)
			})
		},
	})
}

func (p *parser) drivers(v *yaml.Node) {
	d, c := p.d, &p.rb.Drivers
	d.Mapping(v, "drivers", map[string]yamlnode.Field{
		"ssh": func(_, v *yaml.Node) {
			d.Mapping(v, "drivers ssh", map[string]yamlnode.Field{
				"user":       func(_, v *yaml.Node) { c.SSH.User = d.String(v, "drivers ssh user") },
				"key":        func(_, v *yaml.Node) { c.SSH.Key = d.String(v, "drivers ssh key") },
				"knownHosts": func(_, v *yaml.Node) { c.SSH.KnownHosts = d.String(v, "drivers ssh knownHosts") },
			})
		},
		"redfish": func(_, v *yaml.Node) {
			d.Mapping(v, "drivers redfish", map[string]yamlnode.Field{
				"user":        func(_, v *yaml.Node) { c.Redfish.User = d.String(v, "drivers redfish user") },
				"passwordEnv": func(_, v *yaml.Node) { c.Redfish.PasswordEnv = d.String(v, "drivers redfish passwordEnv") },
				"insecure":    func(_, v *yaml.Node) { c.Redfish.Insecure = d.Bool(v, "drivers redfish insecure") },
			})
		},
	})
}

func (p *parser) steps(v *yaml.Node) {
	d := p.d
	p.selNodes = map[*Step]*yaml.Node{}
	d.Seq(v, "steps", func(i int, it *yaml.Node) {
		s := &Step{Order: true, Retries: DefaultRetries, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff,
			Timeout: DefaultTimeout, Estimate: DefaultEstimate, Pos: pos(it)}
		what := fmt.Sprintf("step %d", i+1)
		var actionSeen bool
		d.Mapping(it, what, map[string]yamlnode.Field{
			"name": func(_, v *yaml.Node) {
				s.Name = d.String(v, what+" name")
				if s.Name != "" {
					what = "step " + s.Name
				}
			},
			"action": func(_, v *yaml.Node) { actionSeen = true; s.Action = p.action(v, what+" action") },
			"verify": func(_, v *yaml.Node) { s.Verify = p.verify(v, what+" verify") },
			"targets": func(_, v *yaml.Node) {
				p.selNodes[s] = v
				s.Targets = p.selector(v, what+" targets")
			},
			"dependsOn":  func(_, v *yaml.Node) { s.DependsOn = p.deps(v, what+" dependsOn") },
			"order":      func(_, v *yaml.Node) { s.Order = d.Enum(v, what+" order", "topology", "none") != "none" },
			"retries":    func(_, v *yaml.Node) { s.Retries = d.Int(v, what+" retries", 0, 1000) },
			"backoff":    func(_, v *yaml.Node) { s.Backoff = d.Duration(v, what+" backoff") },
			"maxBackoff": func(_, v *yaml.Node) { s.MaxBackoff = d.Duration(v, what+" maxBackoff") },
			"timeout":    func(_, v *yaml.Node) { s.Timeout = d.Duration(v, what+" timeout") },
			"idempotent": func(_, v *yaml.Node) { s.Idempotent = d.Bool(v, what+" idempotent") },
			"estimate":   func(_, v *yaml.Node) { s.Estimate = d.Duration(v, what+" estimate") },
			"limits": func(_, v *yaml.Node) {
				d.Mapping(v, what+" limits", map[string]yamlnode.Field{
					"parallel": func(_, v *yaml.Node) { s.Limits.Parallel = d.Int(v, what+" limits parallel", 0, 1<<20) },
					"perSite":  func(_, v *yaml.Node) { s.Limits.PerSite = d.Int(v, what+" limits perSite", 0, 1<<20) },
					"perRack":  func(_, v *yaml.Node) { s.Limits.PerRack = d.Int(v, what+" limits perRack", 0, 1<<20) },
				})
			},
		})
		if s.Name == "" {
			d.Errorf(it, "%s: missing name", what)
		} else if !nameRE.MatchString(s.Name) {
			d.Errorf(it, "%s: %q is not a valid name (expected letters, digits, '-', '_', '.')", what, s.Name)
		}
		if !actionSeen {
			d.Errorf(it, "%s: missing action (expected action: {driver: ..., op: ...})", what)
		}
		if _, ok := p.selNodes[s]; !ok {
			d.Errorf(it, "%s: missing targets (expected targets: {servers: {...}, services: {...}, datastores: {...}})", what)
		}
		if s.Timeout <= 0 {
			d.Errorf(it, "%s: timeout must be more than zero", what)
		}
		if !s.Idempotent && s.Verify == nil && actionSeen {
			d.Errorf(it, "%s: a step that is not idempotent needs a verify check, so that the runner can tell whether an interrupted action took effect (or set idempotent: true)", what)
		}
		p.rb.Steps = append(p.rb.Steps, s)
	})
}

func (p *parser) action(v *yaml.Node, what string) Action {
	d := p.d
	a := Action{Pos: pos(v)}
	p.actionFields(v, what, &a, nil)
	if d.Resolve(v) != nil && d.Resolve(v).Kind == yaml.MappingNode {
		if a.Driver == "" {
			d.Errorf(v, "%s: missing driver", what)
		}
		if a.Op == "" {
			d.Errorf(v, "%s: missing op", what)
		}
	}
	return a
}

func (p *parser) actionFields(v *yaml.Node, what string, a *Action, extra map[string]yamlnode.Field) {
	d := p.d
	fields := map[string]yamlnode.Field{
		"driver": func(_, v *yaml.Node) { a.Driver = d.String(v, what+" driver") },
		"op":     func(_, v *yaml.Node) { a.Op = d.String(v, what+" op") },
		"params": func(_, v *yaml.Node) { a.Params = driver.Params(d.StringMap(v, what+" params")) },
	}
	for k, f := range extra {
		fields[k] = f
	}
	d.Mapping(v, what, fields)
}

func (p *parser) verify(v *yaml.Node, what string) *Verify {
	d := p.d
	vf := &Verify{Action: Action{Pos: pos(v)}, Every: DefaultVerifyEvery}
	p.actionFields(v, what, &vf.Action, map[string]yamlnode.Field{
		"within": func(_, v *yaml.Node) { vf.Within = d.Duration(v, what+" within") },
		"every":  func(_, v *yaml.Node) { vf.Every = d.Duration(v, what+" every") },
	})
	if vf.Driver == "" || vf.Op == "" {
		d.Errorf(v, "%s: expected driver and op", what)
	}
	if vf.Every <= 0 {
		vf.Every = DefaultVerifyEvery
	}
	return vf
}

func (p *parser) deps(v *yaml.Node, what string) []Dep {
	d := p.d
	var out []Dep
	d.Seq(v, what, func(_ int, it *yaml.Node) {
		r := d.Resolve(it)
		if r != nil && r.Kind == yaml.ScalarNode {
			out = append(out, Dep{Step: d.String(r, what), Pos: pos(r)})
			return
		}
		dep := Dep{Pos: pos(it)}
		d.Mapping(it, what, map[string]yamlnode.Field{
			"step": func(_, v *yaml.Node) { dep.Step = d.String(v, what+" step") },
			"scope": func(_, v *yaml.Node) {
				dep.Scope = d.Enum(v, what+" scope", ScopeTarget, ScopeRack, ScopeSite, ScopeAll)
			},
		})
		if dep.Step == "" {
			d.Errorf(it, "%s: missing step", what)
		}
		out = append(out, dep)
	})
	return out
}

func (p *parser) selector(v *yaml.Node, what string) Selector {
	d := p.d
	var s Selector
	sites := func(v *yaml.Node, w string) []string {
		out := d.Strings(v, w)
		for _, name := range out {
			p.siteRefs = append(p.siteRefs, siteRef{name, v})
		}
		return out
	}
	tiers := func(v *yaml.Node, w string) []int {
		r := d.Resolve(v)
		if r != nil && r.Kind == yaml.ScalarNode {
			return []int{d.Int(r, w, 0, 3)}
		}
		var out []int
		d.Seq(v, w, func(_ int, it *yaml.Node) { out = append(out, d.Int(it, w, 0, 3)) })
		return out
	}
	d.Mapping(v, what, map[string]yamlnode.Field{
		"servers": func(_, v *yaml.Node) {
			s.Servers = &ServerSelector{}
			w := what + " servers"
			d.Mapping(v, w, map[string]yamlnode.Field{
				"names":   func(_, v *yaml.Node) { s.Servers.Names = d.Strings(v, w+" names") },
				"exclude": func(_, v *yaml.Node) { s.Servers.Exclude = d.Strings(v, w+" exclude") },
				"sites":   func(_, v *yaml.Node) { s.Servers.Sites = sites(v, w+" sites") },
				"racks":   func(_, v *yaml.Node) { s.Servers.Racks = d.Strings(v, w+" racks") },
				"roles":   func(_, v *yaml.Node) { s.Servers.Roles = d.Strings(v, w+" roles") },
				"labels":  func(_, v *yaml.Node) { s.Servers.Labels = d.StringMap(v, w+" labels") },
			})
		},
		"services": func(_, v *yaml.Node) {
			s.Services = &ServiceSelector{}
			w := what + " services"
			d.Mapping(v, w, map[string]yamlnode.Field{
				"names":   func(_, v *yaml.Node) { s.Services.Names = d.Strings(v, w+" names") },
				"exclude": func(_, v *yaml.Node) { s.Services.Exclude = d.Strings(v, w+" exclude") },
				"sites":   func(_, v *yaml.Node) { s.Services.Sites = sites(v, w+" sites") },
				"kinds":   func(_, v *yaml.Node) { s.Services.Kinds = d.Strings(v, w+" kinds") },
				"tiers":   func(_, v *yaml.Node) { s.Services.Tiers = tiers(v, w+" tiers") },
			})
		},
		"datastores": func(_, v *yaml.Node) {
			s.Datastores = &DatastoreSelector{}
			w := what + " datastores"
			d.Mapping(v, w, map[string]yamlnode.Field{
				"names":   func(_, v *yaml.Node) { s.Datastores.Names = d.Strings(v, w+" names") },
				"exclude": func(_, v *yaml.Node) { s.Datastores.Exclude = d.Strings(v, w+" exclude") },
				"sites":   func(_, v *yaml.Node) { s.Datastores.Sites = sites(v, w+" sites") },
				"engines": func(_, v *yaml.Node) { s.Datastores.Engines = d.Strings(v, w+" engines") },
				"tiers":   func(_, v *yaml.Node) { s.Datastores.Tiers = tiers(v, w+" tiers") },
			})
		},
	})
	return s
}

// validate checks references between steps, to the topology and to sites.
func (p *parser) validate() {
	d, rb := p.d, p.rb
	idx := map[string]int{}
	for i, s := range rb.Steps {
		if s.Name == "" {
			continue
		}
		if _, dup := idx[s.Name]; dup {
			d.Errorf(nodeAt(s.Pos), "duplicate step name %q", s.Name)
			continue
		}
		idx[s.Name] = i
	}
	for _, s := range rb.Steps {
		sel := s.Targets
		if (sel.Services != nil || sel.Datastores != nil) && rb.Topology == nil {
			d.Errorf(p.selNodes[s], "step %s targets: services and datastores come from the topology, but the runbook names none (expected topology: path/to/topology.yaml)", s.Name)
		}
		if rb.Topology != nil {
			if sel.Services != nil {
				for _, n := range append(sel.Services.Names, sel.Services.Exclude...) {
					if rb.Topology.Service(n) == nil {
						d.Errorf(p.selNodes[s], "step %s targets: unknown service %q", s.Name, n)
					}
				}
			}
			if sel.Datastores != nil {
				for _, n := range append(sel.Datastores.Names, sel.Datastores.Exclude...) {
					if rb.Topology.Datastore(n) == nil {
						d.Errorf(p.selNodes[s], "step %s targets: unknown datastore %q", s.Name, n)
					}
				}
			}
		}
		for i := range s.DependsOn {
			dep := &s.DependsOn[i]
			j, ok := idx[dep.Step]
			if !ok {
				d.Errorf(nodeAt(dep.Pos), "step %s dependsOn: unknown step %q", s.Name, dep.Step)
				continue
			}
			if rb.Steps[j] == s {
				d.Errorf(nodeAt(dep.Pos), "step %s dependsOn: a step cannot depend on itself", s.Name)
				continue
			}
			if dep.Scope == "" {
				dep.Scope = ScopeSite
				if onlyServers(s.Targets) && onlyServers(rb.Steps[j].Targets) {
					dep.Scope = ScopeTarget
				}
			}
		}
	}
	// Cycles between steps.
	state := make([]int, len(rb.Steps)) // 0 new, 1 on stack, 2 done
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		for _, dep := range rb.Steps[i].DependsOn {
			j, ok := idx[dep.Step]
			if !ok || rb.Steps[j] == rb.Steps[i] {
				continue
			}
			if state[j] == 1 {
				d.Errorf(nodeAt(dep.Pos), "step %s dependsOn %s: dependency cycle", rb.Steps[i].Name, dep.Step)
				return true
			}
			if state[j] == 0 && visit(j) {
				return true
			}
		}
		state[i] = 2
		return false
	}
	for i := range rb.Steps {
		if state[i] == 0 && visit(i) {
			break
		}
	}
	// Site names must exist in the topology, when there is one.
	if rb.Topology != nil {
		for _, r := range p.siteRefs {
			if r.name != "" && rb.Topology.Site(r.name) == nil {
				d.Errorf(r.n, "unknown site %q (the topology has: %s)", r.name, siteNames(rb.Topology))
			}
		}
	}
}

func onlyServers(s Selector) bool {
	return s.Servers != nil && s.Services == nil && s.Datastores == nil
}

func siteNames(t *topology.Topology) string {
	var names []string
	for _, s := range t.Sites {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// nodeAt makes a node carrying a position, for Errorf.
func nodeAt(p Pos) *yaml.Node { return &yaml.Node{Line: p.Line, Column: p.Col} }
