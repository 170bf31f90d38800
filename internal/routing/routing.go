// Package routing holds the shared shape of firebreak's routing decisions:
// for each service (and each datastore's primary), the endpoints that clients
// should use now. The decider writes Routes to the store; the DNS server, the
// API and the UI read them. It is a leaf package with no dependencies so that
// every layer can use it.
package routing

import (
	"sort"
	"time"
)

// Target is one endpoint that clients may use.
type Target struct {
	// ID is the endpoint's stable identity (topology.Endpoint.ID()).
	ID      string `json:"id"`
	Site    string `json:"site"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Weight is the share of traffic the target should get (capacity for
	// active-active, declared weight for weighted). Zero means equal shares.
	Weight int `json:"weight"`
}

// Route is the current routing of one service or datastore.
type Route struct {
	// Service is the service (or datastore) name from the topology.
	Service string `json:"service"`
	// Policy is the topology policy the route was computed with.
	Policy string `json:"policy"`
	// Revision increases with every change of this route (the store's
	// ModRevision when read from etcd).
	Revision int64 `json:"revision"`
	// Targets are the endpoints to use, in preference order for the failover
	// policy.
	Targets []Target `json:"targets"`
	// BySite maps a client's site to its targets, for the nearest policy.
	BySite map[string][]Target `json:"bySite,omitempty"`
	// FailOpen is true when every endpoint is down and Targets is the last
	// non-empty set (a safety rule; an alarm is raised).
	FailOpen bool `json:"failOpen,omitempty"`
	// Reason says why the route last changed, for people.
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Table is the routing of every service at one moment.
type Table struct {
	// Revision is the newest Route.Revision in the table.
	Revision int64 `json:"revision"`
	// Routes by service name.
	Routes map[string]*Route `json:"routes"`
	// Stale is true when the reader has lost its store; StaleSince says
	// since when (static stability: the last table keeps being served).
	Stale      bool      `json:"stale"`
	StaleSince time.Time `json:"staleSince,omitempty"`
}

// Names returns the services in the table, sorted.
func (t *Table) Names() []string {
	out := make([]string, 0, len(t.Routes))
	for n := range t.Routes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
