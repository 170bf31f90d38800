// Package store is firebreak's state: an embedded etcd member (or a client of an
// external etcd cluster), the key layout, and typed helpers over it.
package store

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
)
