package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/store"
)

// topologyYAML renders the simulation's topology as YAML so it can be
// published in the store, where api.Etcd reads it.
func topologyYAML(sim *sitesim.Sim) string {
	var b strings.Builder
	b.WriteString("sites:\n")
	for _, s := range sim.Topology.Sites {
		fmt.Fprintf(&b, "  %s: {role: datacenter}\n", s.Name)
	}
	b.WriteString("nodes:\n")
	for _, n := range sim.Topology.Nodes {
		fmt.Fprintf(&b, "  - {name: %s, site: %s}\n", n.Name, n.Site)
	}
	b.WriteString("services:\n")
	for _, svc := range sim.Topology.Services {
		fmt.Fprintf(&b, "  %s:\n    public: Web\n    check: {http: {path: /healthz}}\n    endpoints:\n", svc.Name)
		for _, ep := range svc.Endpoints {
			fmt.Fprintf(&b, "      - {site: %s, address: %s, port: %d}\n", ep.Site, ep.Address, ep.Port)
		}
	}
	return b.String()
}

// TestEtcdStateFollowsTheDecider runs the real watch-and-decide loop
// (sitesim: embedded etcd, probers, decider) and checks that api.Etcd
// shows a site dying, applies a drain with its audit record, and turns
// stale when the store goes away.
func TestEtcdStateFollowsTheDecider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sim, err := sitesim.Start(ctx, sitesim.Config{IPs: []string{"127.0.50.1", "127.0.50.2", "127.0.50.3"}, Dir: t.TempDir(),
		Interval: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, HoldDown: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if _, err := sim.Client.Put(ctx, store.TopologyKey(1), topologyYAML(sim)); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Client.Put(ctx, store.TopologyCurrent, "1"); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: sim.Client.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	st := api.NewEtcd(cli, api.EtcdConfig{Node: "n-s0", QuorumInterval: 200 * time.Millisecond, QuorumTimeout: 300 * time.Millisecond}, nil)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		<-done
	})
	events := st.Subscribe(rctx)

	poll := func(what string, cond func(*view.Snapshot) bool) *view.Snapshot {
		t.Helper()
		for {
			snap, err := st.Snapshot(ctx)
			if err == nil && cond(snap) {
				return snap
			}
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s (last error %v)", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	snap := poll("every endpoint up and routed", func(s *view.Snapshot) bool {
		w := s.Find(sitesim.Service)
		return w != nil && w.State == view.StateUp && w.Route != nil && len(w.Route.Targets) == 3 && len(w.Endpoints[0].Opinions) >= 2
	})
	if snap.Topology.Revision != 1 || len(snap.Nodes) != 3 || !snap.Store.Quorum || snap.Stale {
		t.Fatalf("snapshot: topology %d, nodes %d, quorum %v, stale %v", snap.Topology.Revision, len(snap.Nodes), snap.Store.Quorum, snap.Stale)
	}

	// A site dies: the snapshot shows it within seconds.
	start := time.Now()
	if err := sim.KillSite(sitesim.Site(1)); err != nil {
		t.Fatal(err)
	}
	snap = poll("site s1 down and out of routing", func(s *view.Snapshot) bool {
		site := s.FindSite(sitesim.Site(1))
		w := s.Find(sitesim.Service)
		return site.State == decide.Down && w.State == view.StateDegraded && len(w.Route.Targets) == 2
	})
	t.Logf("site death visible in the API after %s", time.Since(start).Round(time.Millisecond))
	if len(snap.History) == 0 {
		t.Fatal("no history events after a site death")
	}
	hist, err := st.History(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(hist) == 0 {
		t.Fatalf("history: %d events, %v", len(hist), err)
	}
	inc := view.Incidents(snap.Services, hist, time.Now().Add(-time.Hour), time.Now(), nil)
	if len(inc) != 1 || !inc[0].Ongoing || inc[0].Worst != view.StateDegraded {
		t.Fatalf("incidents: %+v", inc)
	}
	sawRouting := false
	for !sawRouting {
		select {
		case ev := <-events:
			sawRouting = ev.Kind == view.KindRouting
		case <-ctx.Done():
			t.Fatal("no routing event")
		}
	}

	// A drain through Actions: the decider takes s2 out, the audit log has it.
	c := view.Change{Who: "alice", Role: "operator", Why: "maintenance", Via: "n-s0"}
	o, err := st.Drain(ctx, c, sitesim.Site(2), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "drain-s2" || !o.Active {
		t.Fatalf("override %+v", o)
	}
	if _, err := st.Drain(ctx, c, "mars", time.Hour); err == nil {
		t.Fatal("drain of an unknown site accepted")
	}
	poll("s2 drained out of routing", func(s *view.Snapshot) bool {
		w := s.Find(sitesim.Service)
		return s.FindSite(sitesim.Site(2)).Drained != nil && len(w.Route.Targets) == 1
	})
	if _, err := st.Undrain(ctx, c, sitesim.Site(2)); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Audit(ctx, time.Now().Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Action != "drain" || recs[0].Who != "alice" || recs[0].Reason != "maintenance" || recs[1].Action != "undrain" {
		t.Fatalf("audit: %+v", recs)
	}

	// Tokens kept in the store are picked up by every node's authenticator.
	authn := &auth.Authenticator{}
	tctx, tcancel := context.WithCancel(ctx)
	tdone := make(chan error, 1)
	go func() { tdone <- api.FollowTokens(tctx, cli, authn, nil) }()
	if err := api.PutToken(ctx, cli, "bob", auth.Operator, "bobs-token-0123456789"); err != nil {
		t.Fatal(err)
	}
	for {
		if id, ok := authn.Check("bobs-token-0123456789"); ok && id.Name == "bob" && id.Role == auth.Operator {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("stored token never accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ok, err := api.DeleteToken(ctx, cli, "bob"); !ok || err != nil {
		t.Fatalf("delete token: %v %v", ok, err)
	}
	for {
		if _, ok := authn.Check("bobs-token-0123456789"); !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("deleted token still accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tcancel()
	<-tdone

	// The store goes away: the last state is served, flagged stale.
	sim.Close()
	snap = poll("stale", func(s *view.Snapshot) bool { return s.Stale })
	if snap.StaleSince.IsZero() || snap.Find(sitesim.Service) == nil {
		t.Fatalf("stale snapshot: since %v", snap.StaleSince)
	}
	if _, err := st.Drain(ctx, c, sitesim.Site(2), time.Hour); err == nil {
		t.Fatal("drain accepted without quorum")
	}
}
