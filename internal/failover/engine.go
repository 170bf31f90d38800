// Package failover makes a replica of a datastore in a surviving site the
// primary, safely, and points clients at it.
//
// A Manager handles one datastore of the topology. It needs an Engine (the
// datastore's driver: internal/failover/pg for PostgreSQL,
// internal/failover/redisfo for Redis), an etcd client (for the promotion
// epoch, the routing entry and the audit log), a site verdict function and,
// for primaries that cannot be reached, a Fencer (STONITH: an exec hook or
// a Redfish power-off).
//
// The failover rule (DESIGN.md): a replica is promoted only when the
// primary's site is down by verdict (or a human says so), the old primary
// is fenced (or a human says it is), and the replica's lag is within the
// datastore's RPO (or a human explicitly accepts the loss, recorded with
// who and why). Each promotion increments an epoch in etcd with a
// compare-and-swap, so two leaders can never both promote; the routing
// entry flips to the new primary only after the promotion is confirmed; a
// member that acts as a primary without holding the epoch is fenced on
// sight and stays out until resynced.
//
// Manager.Run keeps the readiness checks (is there a replica outside the
// primary's site, is its lag within RPO now, does it have the capacity, is
// the fence path reachable) current, tracks replication positions for the
// "last known lag", and fences stale primaries. See docs/failover.md.
package failover

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"
)

// Roles a member reports.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Member is one server of a datastore: the primary or a replica.
type Member struct {
	// Site is the topology site the member runs in.
	Site    string `json:"site"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Mode is the replication mode of a replica (sync or async); empty for
	// the topology's primary.
	Mode string `json:"mode,omitempty"`
}

// Addr returns host:port.
func (m Member) Addr() string { return net.JoinHostPort(m.Address, strconv.Itoa(m.Port)) }

// String returns site/host:port.
func (m Member) String() string { return m.Site + "/" + m.Addr() }

// Same reports whether m and o are the same server.
func (m Member) Same(o Member) bool { return m.Address == o.Address && m.Port == o.Port }

// State is what a probe of one member found.
type State struct {
	// Role is RolePrimary or RoleReplica.
	Role string `json:"role"`
	// Writable is true when the member accepts writes now (a primary that
	// is not fenced or paused).
	Writable bool `json:"writable"`
	// Position is, for a primary, its current write position; for a
	// replica, the highest position it has received and made durable (it
	// keeps it when promoted). PostgreSQL: WAL bytes (LSN); Redis: the
	// replication offset. Positions of members of one datastore compare.
	Position uint64 `json:"position"`
	// Upstream is the host:port a replica replicates from, when known.
	Upstream string `json:"upstream,omitempty"`
	// Streaming is true when a replica's link to its upstream is up.
	Streaming bool `json:"streaming,omitempty"`
	// Capacity is an engine-defined size to compare members by
	// (PostgreSQL: max_connections; Redis: maxmemory, 0 = unlimited).
	Capacity int64 `json:"capacity"`
	// Replicas is a primary's view of its replicas.
	Replicas []ReplicaView `json:"replicas,omitempty"`
}

// ReplicaView is one replica as its primary sees it.
type ReplicaView struct {
	Name     string        `json:"name"`
	Addr     string        `json:"addr"`
	Sync     bool          `json:"sync"`
	Position uint64        `json:"position"`
	Lag      time.Duration `json:"lag"`
}

// Engine drives the servers of one datastore engine. Implementations must
// be safe for concurrent use; every method is bounded by ctx.
type Engine interface {
	// Name is the topology engine name (postgres, redis).
	Name() string
	// Probe returns the member's role, position and capacity. An error
	// means the member could not be reached or queried.
	Probe(ctx context.Context, m Member) (State, error)
	// StopWrites makes a reachable primary refuse new writes and ends the
	// sessions that could write, without stopping replication to its
	// replicas; the planned switchover's first step.
	StopWrites(ctx context.Context, m Member) error
	// ResumeWrites undoes StopWrites (a switchover that was abandoned).
	ResumeWrites(ctx context.Context, m Member) error
	// Fence makes a reachable old primary refuse writes durably (the
	// setting survives a restart) and, where the engine can, makes it
	// follow newPrimary. It returns an error when m cannot be reached.
	Fence(ctx context.Context, m, newPrimary Member) error
	// Promote makes the replica m a writable primary and returns once it
	// accepts writes.
	Promote(ctx context.Context, m Member) error
	// Resync brings a fenced old primary back as a replica of newPrimary
	// (PostgreSQL: pg_rewind or re-clone through a runbook hook; Redis:
	// REPLICAOF). Only after it may the member be re-admitted.
	Resync(ctx context.Context, m, newPrimary Member) error
}

// Fencer takes a member that cannot be reached out of service for good:
// STONITH. Runbook drivers (redfish power-off, exec hooks) satisfy it.
type Fencer interface {
	// Fence powers off or isolates m; nil means it is confirmed fenced.
	Fence(ctx context.Context, m Member) error
	// Check reports whether the fence path for m is reachable now, without
	// fencing (a readiness check).
	Check(ctx context.Context, m Member) error
}

// Sentinel errors; match with errors.Is.
var (
	// ErrEpochConflict: another leader promoted (or is promoting) first.
	ErrEpochConflict = errors.New("epoch changed: another failover won")
	// ErrSiteUp: the primary's site is not down by verdict.
	ErrSiteUp = errors.New("primary's site is not down")
	// ErrFenceFailed: the old primary could not be fenced.
	ErrFenceFailed = errors.New("old primary not fenced")
	// ErrRPO: no replica is within the RPO.
	ErrRPO = errors.New("no replica within RPO")
	// ErrNoCandidate: no reachable replica in a surviving site.
	ErrNoCandidate = errors.New("no replica to promote")
	// ErrOverride: an override lacks who or why.
	ErrOverride = errors.New("override needs who and reason")
	// ErrPrimaryHealthy: an unplanned failover was asked while the primary
	// is reachable and writable; use a planned switchover.
	ErrPrimaryHealthy = errors.New("primary is healthy")
)
