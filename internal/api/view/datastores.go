package view

import "time"

// Failover modes of a datastore in DatastoreReadiness.
const (
	// FailoverAutomatic: a node runs the failover manager for the
	// datastore; the leader promotes a replica when the primary's site is
	// down and the failover rule allows it.
	FailoverAutomatic = "automatic"
	// FailoverManual: firebreak has no driver for the engine, or the
	// topology gives no addresses; people fail it over (runbooks).
	FailoverManual = "manual"
)

// DatastoreReadiness says whether a datastore could fail over now, within
// its RPO, if its primary's site were lost (GET /api/v1/datastores). It
// mirrors internal/failover's Readiness in a form for people and the API.
type DatastoreReadiness struct {
	Datastore string `json:"datastore"`
	Engine    string `json:"engine"`
	// Mode is FailoverAutomatic or FailoverManual.
	Mode string `json:"mode"`
	// Epoch is the promotion epoch (0: the topology's primary holds the role).
	Epoch int64 `json:"epoch"`
	// PrimarySite and Primary (host:port) are who holds the primary role.
	PrimarySite string `json:"primarySite"`
	Primary     string `json:"primary,omitempty"`
	PrimaryUp   bool   `json:"primaryUp"`
	// ReplicaOutsideSite is true when a reachable replica runs outside the
	// primary's site; ReplicaOutsideDetail names them or says why not.
	ReplicaOutsideSite   bool   `json:"replicaOutsideSite"`
	ReplicaOutsideDetail string `json:"replicaOutsideDetail,omitempty"`
	// LagKnown is false when no replica outside the site has a provable
	// lag (the primary was never observed). LagNow is the smallest lag of
	// such a replica, RPO the datastore's objective (Go durations).
	LagKnown     bool   `json:"lagKnown"`
	LagNow       string `json:"lagNow,omitempty"`
	LagBytes     uint64 `json:"lagBytes"`
	RPO          string `json:"rpo"`
	LagWithinRPO bool   `json:"lagWithinRPO"`
	// CapacityOK: a replica outside the site has the primary's capacity.
	CapacityOK bool `json:"capacityOK"`
	// FencePathOK: the old primary can be fenced now (directly, or the
	// configured STONITH hook answers).
	FencePathOK bool `json:"fencePathOK"`
	// Checks are the individual checks with their details.
	Checks []DatastoreCheck `json:"checks,omitempty"`
	// Summary is one line for people; OK is true when every check passed
	// (always false for a manual datastore).
	Summary string `json:"summary"`
	OK      bool   `json:"ok"`
	// At is when the checks ran (zero for a manual datastore or before
	// the first round).
	At time.Time `json:"at,omitzero"`
}

// DatastoreCheck is one readiness check.
type DatastoreCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}
