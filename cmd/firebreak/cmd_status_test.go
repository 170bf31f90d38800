package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
)

// TestPrintSnapshot checks what status prints from a node's snapshot: the
// stale banner, sites with drains, services with their dependency reason
// and fail-open routing, overrides, and datastore readiness.
func TestPrintSnapshot(t *testing.T) {
	now := time.Now().UTC()
	drain := &view.Override{Override: decide.Override{ID: "drain-b", Kind: decide.KindDrain, Target: "b", Who: "alice", Why: "UPS",
		Created: now, Expires: now.Add(time.Hour)}, Active: true}
	s := &view.Snapshot{Node: "fb-a", Revision: 42, Stale: true, StaleSince: now.Add(-90 * time.Second), StaleReason: "no quorum",
		Topology: view.TopologyInfo{Name: "prod", Revision: 3}, Leader: "fb-a",
		Store: view.StoreHealth{Members: []view.Member{{Name: "fb-a", ID: "1", Reachable: true, RaftLeader: true}, {Name: "fb-b", ID: "2"}}},
		Nodes: []view.Node{{Name: "fb-a", Site: "a", Alive: true, Leader: true}, {Name: "fb-b", Site: "b"}},
		Sites: []view.Site{{Name: "a", Role: "datacenter", State: "up", EndpointsUp: 1, Endpoints: 1, Nodes: []string{"fb-a"}, NodesAlive: 1}, {Name: "b", Role: "datacenter", State: "down", Reason: "no observer sees it", Drained: drain, Nodes: []string{"fb-b"}}},
		Services: []view.Service{{Name: "messenger", State: view.StateDown, StateReason: "hard dependency login is down",
			Route: &routing.Route{Revision: 7, FailOpen: true, Targets: []routing.Target{{Site: "a", Address: "10.0.0.1"}}}}},
		Overrides: []view.Override{*drain},
	}
	ds := []view.DatastoreReadiness{{Datastore: "accounts", Engine: "postgres", Mode: view.FailoverAutomatic, PrimarySite: "a", LagKnown: true, LagNow: "120ms", RPO: "5s", OK: true, Summary: "ready"},
		{Datastore: "cache", Engine: "memcached", Mode: view.FailoverManual, PrimarySite: "b", RPO: "1m"}}
	var out bytes.Buffer
	if err := printSnapshot(&cli{stdout: &out}, s, ds); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"STALE since", "node fb-a has lost its store quorum", ": no quorum",
		"NO QUORUM, revision 42", "prod rev 3", "fb-a *", "unreachable",
		"drained by alice until", ": UPS", "no observer sees it",
		"messenger  down", "hard dependency login is down; FAIL-OPEN", "a/10.0.0.1", "7",
		"drain-b", "accounts", "120ms / 5s", "yes", "cache", "unknown / 1m", "manual",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
}
