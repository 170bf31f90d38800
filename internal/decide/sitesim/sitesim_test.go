package sitesim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
)

// TestSiteDeathAndObserverPartition runs three sites with real HTTP
// endpoints on 127.0.20.x, three probers and the decider on a real embedded
// etcd: cutting one observer off changes nothing; killing a site's endpoint
// moves routing away from it and restoring it brings it back.
func TestSiteDeathAndObserverPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	sim, err := Start(ctx, Config{IPs: []string{"127.0.20.1", "127.0.20.2", "127.0.20.3"}, Dir: t.TempDir(),
		Interval: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, HoldDown: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r0, rev0, err := sim.Route(ctx)
	if err != nil {
		t.Fatal(err)
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			if err := sim.Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. Partition observer n-s0 from every endpoint (its own site's too).
	sim.Isolate(Node(0), true)
	poll("n-s0 to see everything down", func() bool {
		obs, err := sim.Observations(ctx, Node(0))
		if err != nil || len(obs) != 3 {
			return false
		}
		for _, up := range obs {
			if up {
				return false
			}
		}
		return true
	})
	poll("the decider to suspect n-s0", func() bool {
		st := sim.Decider.State()
		return st != nil && slices.Contains(st.Suspected, Node(0))
	})
	r1, rev1, err := sim.Route(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev1 != rev0 || len(r1.Targets) != 3 || r1.Revision != r0.Revision {
		t.Fatalf("a single partitioned observer changed routing: %+v (store rev %d -> %d)", r1, rev0, rev1)
	}
	sim.Isolate(Node(0), false)
	poll("n-s0 to see everything up again", func() bool {
		obs, _ := sim.Observations(ctx, Node(0))
		for _, up := range obs {
			if !up {
				return false
			}
		}
		st := sim.Decider.State()
		return len(obs) == 3 && st != nil && len(st.Suspected) == 0
	})

	// 2. Kill site s1's endpoint: routing moves away from it.
	start := time.Now()
	if err := sim.KillSite(Site(1)); err != nil {
		t.Fatal(err)
	}
	r2, err := sim.WaitRoute(ctx, func(r *routing.Route) bool { return !HasSite(r, Site(1)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("site death to routing change: %v (probes every 100ms, fall 2)", time.Since(start))
	if len(r2.Targets) != 2 || r2.FailOpen {
		t.Fatalf("routing after s1 died: %+v", r2)
	}
	st := sim.Decider.State()
	if sv := st.Sites[Site(1)]; sv.State != decide.Down || !sv.Evacuated {
		t.Fatalf("site verdict %+v, want down and evacuated", sv)
	}

	// 3. Bring it back: capacity restored passes hold-down.
	if err := sim.RestoreSite(Site(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.WaitRoute(ctx, func(r *routing.Route) bool { return HasSite(r, Site(1)) && len(r.Targets) == 3 }); err != nil {
		t.Fatal(err)
	}
	hist, err := decide.ReadHistory(ctx, sim.Client, start)
	killNodeAt := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	var routeEvents int
	for _, ev := range hist {
		if ev.Kind == decide.EventRoute {
			routeEvents++
		}
	}
	if routeEvents != 2 {
		t.Errorf("history has %d route events since the kill, want 2 (away and back): %+v", routeEvents, hist)
	}

	// 4. Site s2's node dies (lease gone) while its endpoint is fine: the
	// two remaining observers still see it up, routing stays.
	if err := sim.KillNode(ctx, Node(2)); err != nil {
		t.Fatal(err)
	}
	ep2 := sim.Topology.Services[0].Endpoints[2].ID()
	poll("the decider to drop n-s2's votes", func() bool {
		st := sim.Decider.State()
		return st != nil && st.Endpoints[ep2].Voters == 2
	})
	if r, _, err := sim.Route(ctx); err != nil || len(r.Targets) != 3 {
		t.Fatalf("routing after n-s2 died but its endpoint lives: %+v %v", r, err)
	}
	// 5. Then the rest of site s2 dies: the others decide without it.
	if err := sim.KillSite(Site(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.WaitRoute(ctx, func(r *routing.Route) bool { return !HasSite(r, Site(2)) && len(r.Targets) == 2 }); err != nil {
		t.Fatal(err)
	}
	t.Logf("node and site death to routing change: %v", time.Since(killNodeAt))
}
