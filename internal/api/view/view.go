// Package view is the read model shared by firebreak's API and UI: one
// Snapshot holds everything the pages and the JSON API show (topology,
// sites with health, services with routing, endpoints with every observer's
// opinion, overrides, history, nodes, leader, store health, staleness), and
// the State and Actions interfaces say where snapshots come from and how
// people change things.
//
// The package also derives what people read on a status page from the
// verdict history: service states, incidents, and daily uptime.
//
// It imports only lower layers (topology, routing, decide, probe), so both
// internal/api and internal/ui can use it.
package view

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
)

// Health states shown for sites and services.
const (
	StateUp       = "up"
	StateDegraded = "degraded"
	StateDown     = "down"
	StateUnknown  = "unknown"
)

// Snapshot is the state of the control plane as one node sees it. A
// Snapshot is immutable once returned: readers may keep and share it.
type Snapshot struct {
	// Node is the name of the node that answered.
	Node string `json:"node"`
	// Generated is when the snapshot was assembled.
	Generated time.Time `json:"generated"`
	// Revision is the store revision the snapshot reflects.
	Revision int64 `json:"revision"`
	// Stale is true when the node has lost its store quorum; everything
	// below is the last state it read, as of StaleSince.
	Stale       bool      `json:"stale"`
	StaleSince  time.Time `json:"staleSince,omitzero"`
	StaleReason string    `json:"staleReason,omitempty"`

	Topology  TopologyInfo   `json:"topology"`
	Sites     []Site         `json:"sites"`
	Services  []Service      `json:"services"`
	Observers []Observer     `json:"observers"`
	Overrides []Override     `json:"overrides"`
	Alarms    []decide.Alarm `json:"alarms"`
	History   []decide.Event `json:"history"`
	Nodes     []Node         `json:"nodes"`
	Leader    string         `json:"leader"`
	Store     StoreHealth    `json:"store"`
}

// TopologyInfo names the topology in force.
type TopologyInfo struct {
	Name     string `json:"name,omitempty"`
	Revision int64  `json:"revision"`
	Zone     string `json:"zone,omitempty"`
}

// Site is one failure domain with its health.
type Site struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Region string `json:"region,omitempty"`
	// State is the leader's verdict (up, down) or unknown.
	State  string    `json:"state"`
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// Evacuated is true when automation has taken the site out of routing.
	Evacuated bool `json:"evacuated,omitempty"`
	// Drained is the active drain override of the site, if any.
	Drained *Override `json:"drained,omitempty"`
	// EndpointsUp and Endpoints count the site's endpoints by verdict.
	EndpointsUp int `json:"endpointsUp"`
	Endpoints   int `json:"endpoints"`
	// Nodes are the firebreak nodes declared in the site, and NodesAlive
	// how many of them hold a live lease.
	Nodes      []string `json:"nodes,omitempty"`
	NodesAlive int      `json:"nodesAlive"`
}

// Service is one service with its routing and endpoints.
type Service struct {
	Name        string `json:"name"`
	Public      string `json:"public,omitempty"`
	Description string `json:"description,omitempty"`
	Kind        string `json:"kind"`
	Tier        int    `json:"tier"`
	Policy      string `json:"policy"`
	DNSName     string `json:"dnsName,omitempty"`
	// State is up (every endpoint up), degraded (some down, routing is
	// failing open, a soft dependency is down, a hard one degraded, or the
	// serving capacity is below the service's peak) or down (every
	// endpoint down, or a hard dependency down).
	State string `json:"state"`
	// StateReason says why the state is worse than the endpoints alone
	// show (a dependency, capacity); empty otherwise.
	StateReason string `json:"stateReason,omitempty"`
	// Route is the current routing, nil before the leader wrote one.
	Route     *routing.Route `json:"route"`
	Endpoints []Endpoint     `json:"endpoints"`
}

// Endpoint is one instance of a service with the leader's verdict and every
// observer's opinion ("who sees what").
type Endpoint struct {
	ID       string `json:"id"`
	Site     string `json:"site"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Weight   int    `json:"weight"`
	Capacity int    `json:"capacity"`
	// Verdict is the leader's verdict; State is its state or unknown.
	Verdict *decide.EndpointVerdict `json:"verdict,omitempty"`
	State   string                  `json:"state"`
	// Routed is true when the endpoint is among the route's targets.
	Routed   bool      `json:"routed"`
	Opinions []Opinion `json:"opinions"`
}

// Opinion is one observer's current view of one endpoint.
type Opinion struct {
	Observer string    `json:"observer"`
	Site     string    `json:"site,omitempty"`
	Up       bool      `json:"up"`
	Since    time.Time `json:"since,omitzero"`
	Detail   string    `json:"detail,omitempty"`
}

// Observer is a node that has published observations.
type Observer struct {
	Name string `json:"name"`
	Site string `json:"site,omitempty"`
	// Suspected is true when the leader discounts its votes (it sees
	// everything outside its own site down).
	Suspected bool `json:"suspected,omitempty"`
}

// Override is a stored override with whether it applies now.
type Override struct {
	decide.Override
	Active bool `json:"active"`
}

// Node is a firebreak node: declared in the topology, alive when it holds a
// lease.
type Node struct {
	Name    string    `json:"name"`
	Site    string    `json:"site"`
	API     string    `json:"api,omitempty"`
	DNS     string    `json:"dns,omitempty"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Alive   bool      `json:"alive"`
	Leader  bool      `json:"leader"`
}

// StoreHealth is the state of the etcd cluster as seen by the node.
type StoreHealth struct {
	// Quorum is true when the node's last linearizable read succeeded.
	Quorum bool `json:"quorum"`
	// LastOK is the time of that read.
	LastOK  time.Time `json:"lastOK,omitzero"`
	Members []Member  `json:"members"`
	Error   string    `json:"error,omitempty"`
}

// Member is one etcd member.
type Member struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Reachable  bool   `json:"reachable"`
	RaftLeader bool   `json:"raftLeader,omitempty"`
	DBSize     int64  `json:"dbSize,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Event is one change announced to subscribers (the SSE stream).
type Event struct {
	// Kind is one of the Kind* constants.
	Kind string `json:"kind"`
	// Key is the subject: a service, site, endpoint ID, override ID, node.
	Key string `json:"key,omitempty"`
	// Revision is the store revision of the change.
	Revision int64 `json:"revision"`
	// Deleted is true when the thing was removed.
	Deleted bool `json:"deleted,omitempty"`
	// Data is the new value as stored (JSON), when there is one.
	Data json.RawMessage `json:"data,omitempty"`
}

// Event kinds.
const (
	KindRouting     = "routing"
	KindVerdict     = "verdict"
	KindObservation = "observation"
	KindOverride    = "override"
	KindHistory     = "history"
	KindNode        = "node"
	KindLeader      = "leader"
	KindTopology    = "topology"
	KindStore       = "store" // quorum lost or regained
)

// Errors shared by implementations of State and Actions.
var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed (message says which field).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the store cannot be written (no quorum).
	ErrUnavailable = errors.New("store unavailable")
)

// State is the source of snapshots. Implementations must be safe for
// concurrent use.
type State interface {
	// Snapshot returns the current snapshot. When the store is unreachable
	// it returns the last one, flagged Stale; it fails only before the
	// first successful read.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// History returns the history events at or after since, oldest first
	// (for incidents and uptime over long periods).
	History(ctx context.Context, since time.Time) ([]decide.Event, error)
	// Subscribe delivers changes until ctx ends, then closes the channel.
	// A slow reader may miss events (the channel is never blocked on); it
	// should re-read Snapshot after any event.
	Subscribe(ctx context.Context) <-chan Event
}

// Change is who asks for a mutation and why; every Actions method records
// it in the audit log together with the change itself.
type Change struct {
	// Who is the authenticated name (token name).
	Who string
	// Role is the caller's role.
	Role string
	// Why is the reason people gave; required for drains and overrides.
	Why string
	// Via is the node that received the request (and forwarded it, if so).
	Via string
	// Remote is the client address.
	Remote string
}

// AuditRecord is one entry of the append-only audit log, stored as JSON at
// store.AuditPrefix+<ts>-<seq>. Its fields are those of decide.AuditRecord
// (written by the CLI's direct path) plus the role, the node the call came
// through, and the client address.
type AuditRecord struct {
	Time time.Time `json:"time"`
	// Who is the token name.
	Who    string `json:"who"`
	Role   string `json:"role,omitempty"`
	Action string `json:"action"`
	// Subject is what was acted on: a site, an override ID.
	Subject string `json:"subject"`
	// Reason is why, as people gave it.
	Reason string `json:"reason"`
	Via    string `json:"via,omitempty"`
	Remote string `json:"remote,omitempty"`
	// Detail is the stored change (for example the override).
	Detail any `json:"detail,omitempty"`
}

// Actions are the mutating operations. Each writes its change and an
// AuditRecord atomically. Implementations must be safe for concurrent use.
type Actions interface {
	// Drain takes every endpoint of site out of routing until ttl passes.
	Drain(ctx context.Context, c Change, site string, ttl time.Duration) (Override, error)
	// Undrain expires every active drain of site.
	Undrain(ctx context.Context, c Change, site string) ([]Override, error)
	// SetOverride stores a new override; ID, Who, Why and Created are
	// filled in from c when empty.
	SetOverride(ctx context.Context, c Change, o decide.Override) (Override, error)
	// ExpireOverride ends the override id now (the record is kept).
	ExpireOverride(ctx context.Context, c Change, id string) (Override, error)
	// Audit returns audit records at or after since, oldest first, at most
	// limit (0: no limit).
	Audit(ctx context.Context, since time.Time, limit int) ([]AuditRecord, error)
}

// Find returns the service named name, or nil.
func (s *Snapshot) Find(name string) *Service {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// FindSite returns the site named name, or nil.
func (s *Snapshot) FindSite(name string) *Site {
	for i := range s.Sites {
		if s.Sites[i].Name == name {
			return &s.Sites[i]
		}
	}
	return nil
}
