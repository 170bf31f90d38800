package probe_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// TestProberRebalances runs one prober (node n0 of 5 sites) against a real
// etcd: it writes an observation per assigned endpoint under its lease, and
// when another node dies it takes over its share and drops (deletes) what
// is no longer its own.
func TestProberRebalances(t *testing.T) {
	e, cli, _, err := sitesim.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	l, err := net.Listen("tcp", "127.0.20.40:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := strconv.Atoi(port)

	topo := &topology.Topology{}
	svc := &topology.Service{Name: "db", Check: topology.Check{Type: topology.CheckTCP, Interval: 50 * time.Millisecond,
		Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1}}
	for i := range 5 {
		site := fmt.Sprintf("s%d", i)
		topo.Sites = append(topo.Sites, &topology.Site{Name: site, Role: topology.RoleDatacenter})
		topo.Nodes = append(topo.Nodes, &topology.Node{Name: fmt.Sprintf("n%d", i), Site: site})
		for j := range 10 {
			// Distinct addresses make distinct endpoint IDs; the dial hook
			// below sends every check to the one listener.
			svc.Endpoints = append(svc.Endpoints, &topology.Endpoint{Service: "db", Site: site, Address: fmt.Sprintf("127.0.20.%d", 41+j), Port: p})
		}
	}
	topo.Services = []*topology.Service{svc}
	topo.Index()

	leases := map[string]clientv3.LeaseID{}
	live := map[string]bool{}
	for _, n := range topo.Nodes {
		g, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		leases[n.Name] = g.ID
		live[n.Name] = true
		if _, err := cli.Put(ctx, store.NodesPrefix+n.Name, "{}", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	// Every check goes to the one listener, whatever the endpoint address.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, l.Addr().String())
	}
	reg := prometheus.NewRegistry()
	pr, err := probe.NewProber(probe.Config{Node: "n0", Topology: topo, Client: cli, Lease: leases["n0"], Dial: dial, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A prober restarted on the same registry (new topology, new lease)
	// shares the series instead of failing to register.
	if _, err := probe.NewProber(probe.Config{Node: "n0", Topology: topo, Client: cli, Lease: leases["n0"], Registerer: reg}); err != nil {
		t.Fatalf("second prober on the same registry: %v", err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pr.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-done })

	keys := func() map[string]bool {
		resp, err := cli.Get(ctx, store.ObservationsPrefix+"n0/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, kv := range resp.Kvs {
			m[string(kv.Key)[len(store.ObservationsPrefix+"n0/"):]] = true
		}
		return m
	}
	waitFor := func(want []string) {
		t.Helper()
		for {
			got := keys()
			ok := len(got) == len(want)
			for _, id := range want {
				ok = ok && got[id]
			}
			if ok {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("observations of n0: have %d, want %d (%v)", len(got), len(want), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := probe.Assign(topo, live, 0).For("n0")
	if len(before) <= 10 || len(before) >= 50 {
		t.Fatalf("n0 assigned %d of 50 endpoints; want its own 10 plus a share", len(before))
	}
	waitFor(before)
	checks, ups := probeMetrics(t, reg)
	if checks < uint64(len(before)) || ups < float64(len(before)) {
		t.Fatalf("metrics: %d tcp ok checks, %v transitions to up; want at least %d each", checks, ups, len(before))
	}

	// n3 dies: n0 takes over part of its share.
	if _, err := cli.Revoke(ctx, leases["n3"]); err != nil {
		t.Fatal(err)
	}
	delete(live, "n3")
	after := probe.Assign(topo, live, 0).For("n0")
	if len(after) <= len(before) {
		t.Fatalf("n0 watches %d endpoints after n3 died, %d before; want more", len(after), len(before))
	}
	waitFor(after)
	if pr.Scheduler().Len() != len(after) {
		t.Fatalf("scheduler has %d targets, want %d", pr.Scheduler().Len(), len(after))
	}

	// n3 comes back: n0 hands its share back and deletes those opinions.
	g, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, store.NodesPrefix+"n3", "{}", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	waitFor(before)
}

// probeMetrics returns the number of successful tcp checks observed and
// the number of transitions to up, as gathered from reg.
func probeMetrics(t *testing.T, reg *prometheus.Registry) (checks uint64, ups float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := func(m *dto.Metric) map[string]string {
		out := map[string]string{}
		for _, l := range m.GetLabel() {
			out[l.GetName()] = l.GetValue()
		}
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := labels(m)
			switch mf.GetName() {
			case "firebreak_probe_check_duration_seconds":
				if l["check"] == "tcp" && l["result"] == "ok" {
					checks += m.GetHistogram().GetSampleCount()
				}
			case "firebreak_probe_transitions_total":
				if l["check"] == "tcp" && l["to"] == "up" {
					ups += m.GetCounter().GetValue()
				}
			}
		}
	}
	return checks, ups
}
