// Package topology is firebreak's model of what a company runs where: sites,
// firebreak's own nodes, services with their endpoints and dependencies,
// datastores with replicas and backups, and customer classes with SLA terms.
//
// A topology is read from YAML with Parse or Load. Every error names the
// file, line and column and says what was expected; all errors in a file are
// reported together. A *Topology returned without error is valid: every
// reference resolves, names are unique, and dependencies have no cycle.
//
// The model is read-only after parsing and safe for concurrent readers.
package topology

import "time"

// Site roles.
const (
	RoleDatacenter = "datacenter" // runs services
	RoleWitness    = "witness"    // runs only a firebreak node, to break ties
)

// Service kinds.
const (
	KindApp = "app" // serves users or other services
	KindOps = "ops" // operators' tools: must survive any single-site loss
)

// Routing policies.
const (
	PolicyActiveActive = "active-active" // every healthy endpoint, weighted by capacity
	PolicyFailover     = "failover"      // the first site (in Service.Failover order) with a healthy endpoint
	PolicyWeighted     = "weighted"      // every healthy endpoint, by declared weight
	PolicyNearest      = "nearest"       // the client's own site first (DNS subnet mapping)
)

// Replica modes.
const (
	ModeSync  = "sync"
	ModeAsync = "async"
)

// Check types.
const (
	CheckHTTP  = "http"
	CheckHTTPS = "https"
	CheckTCP   = "tcp"
	CheckDNS   = "dns"
	CheckGRPC  = "grpc"
	CheckExec  = "exec"
)

// Defaults applied by the parser where a field is absent.
const (
	DefaultTTL                   = 5 * time.Second
	DefaultCheckInterval         = time.Second
	DefaultCheckTimeout          = 500 * time.Millisecond
	DefaultRise                  = 2
	DefaultFall                  = 2
	DefaultWeight                = 1
	DefaultCapacity              = 1
	DefaultTier                  = 2
	DefaultMaxAutoEvacuatedSites = 1
	DefaultHoldDown              = 10 * time.Second
)

// Pos is a position in the source file (1-based).
type Pos struct {
	Line, Col int
}

// Topology is one parsed, validated topology file.
type Topology struct {
	// Source is the file name the topology was read from.
	Source string
	// Name is an optional label for the company or environment.
	Name string

	Sites      []*Site
	Nodes      []*Node
	DNS        DNS
	Decide     Decide
	Store      Store
	Services   []*Service
	Datastores []*Datastore
	Customers  []*CustomerClass

	siteIdx      map[string]*Site
	serviceIdx   map[string]*Service
	datastoreIdx map[string]*Datastore
	nodeIdx      map[string]*Node
}

// Site is a failure domain: a data center, a region or a zone.
type Site struct {
	Name string
	// Role is RoleDatacenter (default) or RoleWitness.
	Role string
	// Region groups sites for reporting; optional.
	Region string
	// Racks optionally declares the racks inside the site; endpoints may name
	// one, and analysis then also considers the loss of each rack.
	Racks []string
	// Subnets maps client networks (CIDR) to this site, for the nearest policy.
	Subnets []string
	Pos     Pos
}

// Node is one firebreak node (one per site).
type Node struct {
	Name string
	Site string
	// API is the host:port of the node's HTTP API and UI.
	API string
	// DNS is the host:port its authoritative DNS server listens on.
	DNS string
	// Peer is the etcd peer URL of its embedded store member
	// (https://host:2380); empty for a node that is only a store client.
	Peer string
	// Client is the etcd client URL of its embedded member.
	Client string
	Pos    Pos
}

// DNS configures the authoritative zone firebreak serves.
type DNS struct {
	// Zone is the fully qualified zone (ends with a dot). Empty: no DNS.
	Zone string
	// TTL is the default answer TTL (default 5s).
	TTL time.Duration
	// Secondaries may transfer the zone (AXFR); empty means transfers are off.
	Secondaries []string
	Pos         Pos
}

// Decide holds the leader's safety settings.
type Decide struct {
	// MaxAutoEvacuatedSites is how many sites automation may evacuate at once
	// (default 1).
	MaxAutoEvacuatedSites int
	// HoldDown is the dampening period between automatic routing changes of
	// one service (default 10s).
	HoldDown time.Duration
}

// Store says where firebreak keeps its state. Zero value: an embedded
// single-member etcd, or a cluster of embedded members when nodes declare
// peer URLs.
type Store struct {
	// Endpoints of an existing external etcd cluster; when set, no member is
	// embedded.
	Endpoints []string
	// TLS files for client (and, embedded, peer) connections; optional.
	CAFile, CertFile, KeyFile string
	Pos                       Pos
}

// Service is something users or other services call.
type Service struct {
	Name string
	// Kind is KindApp (default) or KindOps.
	Kind string
	// Tier is 0 (most critical) to 3 (default 2).
	Tier int
	// Public is the name shown on the public status page; empty hides the
	// service from it.
	Public string
	// Description is a free-text line for people.
	Description string
	// DNSName is the owner name in the zone (default: Name).
	DNSName string
	// Aliases are extra names in the zone that CNAME to DNSName.
	Aliases []string
	// Policy is the routing policy (default active-active).
	Policy string
	// Failover is the site order for the failover policy (default: the
	// order of endpoints).
	Failover []string
	// Peak is the capacity the service needs at peak, in the same unit as
	// endpoint capacity; 0 means "more than zero". When the endpoints left
	// after a loss have less, the service is degraded.
	Peak int
	// RTO and RPO are the recovery targets.
	RTO, RPO  time.Duration
	Check     Check
	Endpoints []*Endpoint
	DependsOn []Dependency
	Pos       Pos
}

// Endpoint is one instance of a service.
type Endpoint struct {
	Service  string
	Site     string
	Rack     string
	Address  string
	Port     int
	Weight   int
	Capacity int
	Pos      Pos
}

// ID is the endpoint's stable identity: service/site/address:port.
func (e *Endpoint) ID() string {
	return e.Service + "/" + e.Site + "/" + e.Address + ":" + itoa(e.Port)
}

// Check is a service's health check.
type Check struct {
	// Type is one of the Check* constants (default tcp).
	Type string
	// Path, Status and Body apply to http/https: GET Path, expect Status
	// (default 200) and, when set, Body as a substring.
	Path   string
	Status int
	Body   string
	// Insecure skips TLS verification for https.
	Insecure bool
	// Query, QType and Expect apply to dns: ask Query (type QType, default
	// A) and, when set, expect Expect in an answer.
	Query, QType, Expect string
	// GRPCService is the grpc.health.v1 service name (empty: the server).
	GRPCService string
	// Command applies to exec: argv, run with the timeout; exit 0 is up.
	Command []string
	// Interval, Timeout, Rise and Fall default to 1s, 500ms, 2 and 2.
	Interval, Timeout time.Duration
	Rise, Fall        int
}

// Dependency is a service's need for another service or a datastore.
type Dependency struct {
	// Target is the name of a service or a datastore.
	Target string
	// Hard means the dependant is down without the target; otherwise it is
	// only degraded.
	Hard bool
	Pos  Pos
}

// Datastore is a stateful service with a primary, replicas and backups.
type Datastore struct {
	Name string
	// Engine is postgres, mysql, redis, mongodb, cassandra, kafka, objectstore
	// or other.
	Engine string
	Tier   int
	// Primary is the primary's site, Address/Port how to reach it.
	Primary string
	Address string
	Port    int
	// DNSName is the name in the zone that points at the current primary
	// (default: Name).
	DNSName  string
	Replicas []Replica
	Backups  []Backup
	RPO, RTO time.Duration
	Pos      Pos
}

// Replica is a copy of a datastore kept by replication.
type Replica struct {
	Site    string
	Mode    string // sync or async
	Address string
	Port    int
	Pos     Pos
}

// Backup is a periodic copy of a datastore.
type Backup struct {
	Site      string
	Immutable bool
	Every     time.Duration
	Pos       Pos
}

// CustomerClass is a group of customers with SLA terms, for the impact
// ledger.
type CustomerClass struct {
	Name string
	// Services the class uses; it is down when any of them is down.
	Services []string
	// Count is how many customers are in the class (for totals).
	Count int
	// MonthlyFee is what one customer pays per month, in Currency.
	MonthlyFee float64
	Currency   string
	SLA        SLA
	Pos        Pos
}

// SLA is the availability promised to a customer class and the credits owed
// when it is missed.
type SLA struct {
	// Target is the promised monthly availability in percent (e.g. 99.9).
	Target float64
	// Credits are tiers: availability below Below earns Percent of the
	// monthly fee. Sorted by Below, descending.
	Credits []CreditTier
}

// CreditTier is one SLA credit step.
type CreditTier struct {
	Below   float64
	Percent float64
}

// Site returns the site named name, or nil.
func (t *Topology) Site(name string) *Site { return t.siteIdx[name] }

// Service returns the service named name, or nil.
func (t *Topology) Service(name string) *Service { return t.serviceIdx[name] }

// Datastore returns the datastore named name, or nil.
func (t *Topology) Datastore(name string) *Datastore { return t.datastoreIdx[name] }

// Node returns the firebreak node named name, or nil.
func (t *Topology) Node(name string) *Node { return t.nodeIdx[name] }

// Datacenters returns the sites whose role is datacenter, in file order.
func (t *Topology) Datacenters() []*Site {
	var out []*Site
	for _, s := range t.Sites {
		if s.Role == RoleDatacenter {
			out = append(out, s)
		}
	}
	return out
}

// Endpoints returns every service endpoint, in file order.
func (t *Topology) Endpoints() []*Endpoint {
	var out []*Endpoint
	for _, s := range t.Services {
		out = append(out, s.Endpoints...)
	}
	return out
}

// Index rebuilds the name indexes; Parse calls it, and code that builds a
// Topology by hand (generators, tests) must call it before use.
func (t *Topology) Index() {
	t.siteIdx = make(map[string]*Site, len(t.Sites))
	for _, s := range t.Sites {
		t.siteIdx[s.Name] = s
	}
	t.serviceIdx = make(map[string]*Service, len(t.Services))
	for _, s := range t.Services {
		t.serviceIdx[s.Name] = s
	}
	t.datastoreIdx = make(map[string]*Datastore, len(t.Datastores))
	for _, d := range t.Datastores {
		t.datastoreIdx[d.Name] = d
	}
	t.nodeIdx = make(map[string]*Node, len(t.Nodes))
	for _, n := range t.Nodes {
		t.nodeIdx[n.Name] = n
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
