// Package store is firebreak's state: an embedded etcd member (or a client of an
// external etcd cluster), the key layout, and typed helpers over it.
package store

import (
	"fmt"
	"time"
)

// Key layout. Every key firebreak writes lives under Prefix. Values are JSON
// unless stated otherwise. This list is the contract between nodes of
// different versions: add keys, never change the meaning of one.
//
//	/firebreak/v1/topology/current           revision number (decimal) of the active topology
//	/firebreak/v1/topology/<rev>             topology YAML source, rev zero-padded to 20 digits
//	/firebreak/v1/nodes/<node>               node liveness and info, under the node's lease
//	/firebreak/v1/election/<role>/...        concurrency.Election keys (leader, runner)
//	/firebreak/v1/observations/<observer>/<endpoint-id>   one observer's opinion, under its lease
//	/firebreak/v1/verdicts/endpoints/<endpoint-id>        the leader's verdict per endpoint
//	/firebreak/v1/verdicts/sites/<site>                   the leader's verdict per site
//	/firebreak/v1/routing/<service>          routing.Route for a service or datastore
//	/firebreak/v1/overrides/<id>             an override (drain, force, freeze) with who/why/expiry
//	/firebreak/v1/history/<ts>-<seq>         append-only verdict/routing change events
//	/firebreak/v1/runs/<run-id>/...          runbook runs: spec, state, per target×step progress
//	/firebreak/v1/epochs/<datastore>         datastore promotion epoch (compare-and-swap)
//	/firebreak/v1/audit/<ts>-<seq>           append-only audit log of mutating calls
//	/firebreak/v1/failover/observed/<ds>     a datastore primary's last observed write position (failover.Observation)
//	/firebreak/v1/tokens/<name>              an API token: name, role and SHA-256 of the secret (api.StoredToken)
const (
	Prefix                 = "/firebreak/v1/"
	TopologyPrefix         = Prefix + "topology/"
	TopologyCurrent        = TopologyPrefix + "current"
	NodesPrefix            = Prefix + "nodes/"
	ElectionPrefix         = Prefix + "election/"
	ObservationsPrefix     = Prefix + "observations/"
	VerdictsPrefix         = Prefix + "verdicts/"
	EndpointVerdictsPrefix = VerdictsPrefix + "endpoints/"
	SiteVerdictsPrefix     = VerdictsPrefix + "sites/"
	RoutingPrefix          = Prefix + "routing/"
	OverridesPrefix        = Prefix + "overrides/"
	HistoryPrefix          = Prefix + "history/"
	RunsPrefix             = Prefix + "runs/"
	EpochsPrefix           = Prefix + "epochs/"
	AuditPrefix            = Prefix + "audit/"
	FailoverObservedPrefix = Prefix + "failover/observed/"
	TokensPrefix           = Prefix + "tokens/"
)

// TopologyKey is the key of topology revision rev.
func TopologyKey(rev int64) string { return fmt.Sprintf("%s%020d", TopologyPrefix, rev) }

// NodeKey is the liveness key of the named node.
func NodeKey(node string) string { return NodesPrefix + node }

// ElectionKey is the election prefix for a role; RoleLeader is the only role
// the node package campaigns for today.
func ElectionKey(role string) string { return ElectionPrefix + role }

// RoleLeader is the election role of the node that runs leader-only parts
// (decider, runner).
const RoleLeader = "leader"

// ObserverPrefix is the prefix of every observation written by observer.
func ObserverPrefix(observer string) string { return ObservationsPrefix + observer + "/" }

// ObservationKey is one observer's opinion of one endpoint. Endpoint IDs
// (service/site/address:port) contain slashes; they are kept as they are, so
// the observer is always the first path element after ObservationsPrefix.
func ObservationKey(observer, endpointID string) string {
	return ObserverPrefix(observer) + endpointID
}

// EndpointVerdictKey is the leader's verdict for an endpoint.
func EndpointVerdictKey(endpointID string) string { return EndpointVerdictsPrefix + endpointID }

// SiteVerdictKey is the leader's verdict for a site.
func SiteVerdictKey(site string) string { return SiteVerdictsPrefix + site }

// RoutingKey is the routing of a service or datastore.
func RoutingKey(service string) string { return RoutingPrefix + service }

// OverrideKey is an override by id.
func OverrideKey(id string) string { return OverridesPrefix + id }

// RunPrefix is the prefix of everything stored for one runbook run.
func RunPrefix(runID string) string { return RunsPrefix + runID + "/" }

// EpochKey is the promotion epoch of a datastore.
func EpochKey(datastore string) string { return EpochsPrefix + datastore }

// FailoverObservedKey is the last observed write position of a datastore's
// primary, kept by every node's failover manager for the "last known lag".
func FailoverObservedKey(datastore string) string { return FailoverObservedPrefix + datastore }

// TokenKey is an API token kept in the store, by token name.
func TokenKey(name string) string { return TokensPrefix + name }

// SeqKey builds an append-only key under prefix (HistoryPrefix, AuditPrefix):
// the UTC time in nanoseconds, zero-padded so keys sort by time, and a
// sequence number that breaks ties within one writer.
func SeqKey(prefix string, t time.Time, seq uint64) string {
	return fmt.Sprintf("%s%020d-%06d", prefix, t.UTC().UnixNano(), seq)
}
