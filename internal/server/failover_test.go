package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// The failover test's addresses: this test's loopback block is
// 127.0.80-89.x (the node on .80, the Redis servers on .81-.84, the
// sites' service endpoints on .85 and .86).
const (
	foNodeIP  = "127.0.80.1"
	foAPIAddr = foNodeIP + ":8080"
	foDNSAddr = foNodeIP + ":5353"
)

// tcpEndpoint accepts TCP connections on host until closed.
func tcpEndpoint(t *testing.T, host string) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// TestAutomaticFailover runs one node as `firebreak serve` does with a
// Redis datastore whose primary (site east) and replica (site west) are
// real servers. Killing the primary and east's only service endpoint turns
// the decider's verdict on east to down; the leader must then promote the
// replica once (epoch 1), point the datastore's routing and DNS name at it,
// and report the new primary in GET /api/v1/datastores. A second Redis
// datastore in the same sites has no STONITH hook: its failover must be
// refused (its old primary cannot be fenced), audited, and not re-routed.
func TestAutomaticFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })

	rp, err := harness.StartRedis(ctx, harness.RedisOptions{HostBlock: [2]int{81, 84}, Replicas: 1})
	if errors.Is(err, harness.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	primary, replica := rp.Primary, rp.Replicas[0]
	// A second datastore in the same sites without a STONITH hook: once
	// east is lost its primary cannot be fenced, so the rule refuses.
	rp2, err := harness.StartRedis(ctx, harness.RedisOptions{HostBlock: [2]int{81, 84}, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp2.Close)
	eastLn, eastPort := tcpEndpoint(t, "127.0.85.1")
	_, westPort := tcpEndpoint(t, "127.0.86.1")

	src := fmt.Sprintf(`
name: failover-test
sites:
  east: {role: datacenter}
  west: {role: datacenter}
nodes:
  - {name: fb-west, site: west, api: "%[1]s", dns: "%[2]s", peer: "http://%[3]s:2380", client: "http://%[3]s:2379"}
dns:
  zone: test.firebreak.
  ttl: 5s
services:
  app:
    tier: 0
    check: {tcp: {}, interval: 200ms, timeout: 200ms}
    endpoints:
      - {site: east, address: 127.0.85.1, port: %[4]d}
      - {site: west, address: 127.0.86.1, port: %[5]d}
datastores:
  cache:
    engine: redis
    primary: east
    address: %[6]s
    port: %[7]d
    replicas: [{site: west, mode: async, address: %[8]s, port: %[9]d}]
    rpo: 5s
  unfenced:
    engine: redis
    primary: east
    address: %[10]s
    port: %[11]d
    replicas: [{site: west, mode: async, address: %[12]s, port: %[13]d}]
    rpo: 5s
  search:
    engine: mongodb
    primary: east
    replicas: [{site: west, mode: async}]
    rpo: 1m
`, foAPIAddr, foDNSAddr, foNodeIP, eastPort, westPort, primary.Host, primary.Port, replica.Host, replica.Port,
		rp2.Primary.Host, rp2.Primary.Port, rp2.Replicas[0].Host, rp2.Replicas[0].Port)
	top, err := topology.Parse("failover.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	self := top.Node("fb-west")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	const tok = "viewer-secret-0123456789"
	if err := os.WriteFile(tokens, []byte(tok+" viewer grafana\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// STONITH stand-in: the primary's "power" is its process; fenced once
	// the process is gone.
	fence := failover.FencerFunc(func(context.Context, failover.Member) error {
		if primary.Running() {
			return errors.New("primary still running")
		}
		return nil
	})
	comps, err := Components(top, self, Options{TokensFile: tokens, DNSWorkers: 1, DNSSocketBuffer: -1, Logger: log,
		Fencers: map[string]failover.Fencer{"cache": fence}, FailoverInterval: 200 * time.Millisecond, FailoverRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	member, ext, err := node.StoreFor(top, self, self.Name, node.StoreOptions{DataDir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(ctx, node.Config{Name: self.Name, Topology: top, TopologySource: []byte(src),
		Member: member, External: ext, Logger: log, Components: comps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("shutdown: %v", err)
		}
	})

	datastores := func() ([]view.DatastoreReadiness, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+foAPIAddr+"/api/v1/datastores", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Datastores []view.DatastoreReadiness `json:"datastores"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, string(b)
		}
		return r.Datastores, string(b)
	}
	// Before: cache is ready (replica in west, lag known), search manual.
	poll(t, ctx, "cache ready in /api/v1/datastores", func() (bool, string) {
		ds, body := datastores()
		return len(ds) == 3 && ds[0].Datastore == "cache" && ds[0].Mode == view.FailoverAutomatic && ds[0].OK &&
			ds[0].PrimarySite == "east" && ds[0].ReplicaOutsideSite && ds[0].LagKnown &&
			ds[1].Datastore == "search" && ds[1].Mode == view.FailoverManual && !ds[1].OK &&
			ds[2].Datastore == "unfenced" && ds[2].OK, body
	})
	// The site verdicts exist and east is up: no failover yet.
	poll(t, ctx, "east up by verdict", func() (bool, string) {
		resp, err := n.Client().Get(ctx, store.SiteVerdictKey("east"))
		if err != nil || len(resp.Kvs) == 0 {
			return false, "no verdict"
		}
		return strings.Contains(string(resp.Kvs[0].Value), `"state":"up"`), string(resp.Kvs[0].Value)
	})
	if ep, _, err := failover.ReadEpoch(ctx, n.Client(), "cache"); err != nil || ep.Epoch != 0 {
		t.Fatalf("epoch before the loss: %+v %v", ep, err)
	}

	// Lose site east: the primary and east's endpoint.
	killed := time.Now()
	primary.Kill()
	rp2.Primary.Kill()
	eastLn.Close()

	poll(t, ctx, "east down by verdict", func() (bool, string) {
		resp, err := n.Client().Get(ctx, store.SiteVerdictKey("east"))
		if err != nil || len(resp.Kvs) == 0 {
			return false, "no verdict"
		}
		return strings.Contains(string(resp.Kvs[0].Value), `"state":"down"`), string(resp.Kvs[0].Value)
	})
	poll(t, ctx, "routing of cache points at the replica", func() (bool, string) {
		resp, err := n.Client().Get(ctx, store.RoutingKey("cache"))
		if err != nil || len(resp.Kvs) == 0 {
			return false, "no routing key"
		}
		var r routing.Route
		if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
			return false, err.Error()
		}
		return len(r.Targets) == 1 && r.Targets[0].Address == replica.Host && r.Targets[0].Port == replica.Port &&
			r.Targets[0].Site == "west", string(resp.Kvs[0].Value)
	})
	t.Logf("site loss to routing at the new primary: %s", time.Since(killed).Round(time.Millisecond))
	if role, err := replica.Client().Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("replica's role after failover: %v %v", role, err)
	}
	if err := replica.Client().Set(ctx, "after-failover", "1", 0).Err(); err != nil {
		t.Errorf("write to the new primary: %v", err)
	}
	poll(t, ctx, "DNS name of cache answers the new primary", func() (bool, string) {
		m := new(dns.Msg)
		m.SetQuestion("cache.test.firebreak.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(m, foDNSAddr)
		if err != nil {
			return false, err.Error()
		}
		if len(r.Answer) != 1 {
			return false, r.String()
		}
		a, ok := r.Answer[0].(*dns.A)
		return ok && a.A.String() == replica.Host, r.String()
	})
	// The readiness now names the new primary in west, at epoch 1; by then
	// the leader has had several verdict rounds to fail over again.
	poll(t, ctx, "readiness at epoch 1 with the primary in west", func() (bool, string) {
		ds, body := datastores()
		return len(ds) == 3 && ds[0].Epoch == 1 && ds[0].PrimarySite == "west" && ds[0].PrimaryUp &&
			ds[0].Primary == replica.Addr(), body
	})
	ep, _, err := failover.ReadEpoch(ctx, n.Client(), "cache")
	if err != nil || ep.Epoch != 1 || ep.State != failover.EpochPromoted || ep.Primary.Site != "west" {
		t.Fatalf("epoch after the loss: %+v %v", ep, err)
	}
	resp, err := n.Client().Get(ctx, store.AuditPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	failovers := 0
	for _, kv := range resp.Kvs {
		var e failover.Event
		if json.Unmarshal(kv.Value, &e) == nil && e.Kind == "failover" && e.Datastore == "cache" {
			failovers++
			if e.FencedBy != "stonith" || e.Who != "fb-west" {
				t.Errorf("failover audit: %+v", e)
			}
		}
	}
	if failovers != 1 {
		t.Errorf("%d failover events in the audit log, want 1", failovers)
	}
	// The unfenced datastore: refused (audited), not promoted, not
	// re-routed, and its readiness says why.
	refused := 0
	for _, kv := range resp.Kvs {
		var e failover.Event
		if json.Unmarshal(kv.Value, &e) == nil && e.Datastore == "unfenced" {
			if e.Kind != "failover-refused" || !strings.Contains(e.Error, "fence") {
				t.Errorf("unfenced audit: %+v", e)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Error("no failover-refused event for the unfenced datastore")
	}
	if ep, _, err := failover.ReadEpoch(ctx, n.Client(), "unfenced"); err != nil || ep.Epoch != 0 {
		t.Errorf("unfenced epoch: %+v %v", ep, err)
	}
	if r, err := failover.ReadRoute(ctx, n.Client(), "unfenced"); err != nil || (r != nil && r.Targets[0].Address != rp2.Primary.Host) {
		t.Errorf("unfenced route moved: %+v %v", r, err)
	}
	poll(t, ctx, "unfenced not ready: fence path", func() (bool, string) {
		ds, body := datastores()
		return len(ds) == 3 && !ds[2].OK && !ds[2].FencePathOK && !ds[2].PrimaryUp, body
	})
	// The history (the dashboard's timeline) has it as a decide.Event.
	resp, err = n.Client().Get(ctx, store.HistoryPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, kv := range resp.Kvs {
		var e decide.Event
		if json.Unmarshal(kv.Value, &e) == nil && e.Kind == "failover" && e.Subject == "cache" &&
			e.To == "failover to west/"+replica.Addr() && e.From == "east/"+primary.Addr() {
			seen = true
		}
	}
	if !seen {
		t.Error("no failover event for cache in the history")
	}
}

// TestFailoverFollowsTopology checks that the failover part restarts with a
// topology published to the store: a datastore without replica addresses
// is manual, and becomes automatic once `firebreak apply` adds them.
func TestFailoverFollowsTopology(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })
	const ip = "127.0.80.5"
	// Nothing listens on the datastore's ports: readiness is "not ready",
	// which is all this test needs.
	topo := func(replicaAddr string) string {
		return `
name: follow-test
sites:
  east: {role: datacenter}
  west: {role: datacenter}
nodes:
  - {name: fb-west, site: west, api: "` + ip + `:8080", dns: "` + ip + `:5353", peer: "http://` + ip + `:2380", client: "http://` + ip + `:2379"}
dns:
  zone: test.firebreak.
datastores:
  cache:
    engine: redis
    primary: east
    address: 127.0.87.1
    port: 6390
    replicas: [{site: west, mode: async` + replicaAddr + `}]
    rpo: 5s
`
	}
	v1 := topo("")
	v2 := topo(", address: 127.0.88.1, port: 6390")
	top, err := topology.Parse("v1.yaml", []byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	self := top.Node("fb-west")
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fo := &Failover{Interval: 100 * time.Millisecond, Logger: log}
	member, ext, err := node.StoreFor(top, self, self.Name, node.StoreOptions{DataDir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(ctx, node.Config{Name: self.Name, Topology: top, TopologySource: []byte(v1),
		Member: member, External: ext, Logger: log, Components: []node.Component{fo}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("shutdown: %v", err)
		}
	})
	poll(t, ctx, "cache manual under v1", func() (bool, string) {
		r := fo.Readiness()
		return len(r) == 1 && r[0].Mode == view.FailoverManual && strings.Contains(r[0].Summary, "replica has no address"), fmt.Sprint(r)
	})
	// Publish only once the node runs the store's copy of v1 (revision 1),
	// so its own first publication cannot race with ours.
	poll(t, ctx, "v1 confirmed by the store", func() (bool, string) {
		_, rev := n.Topology()
		return rev > 0, fmt.Sprint("rev ", rev)
	})
	if _, _, err := store.PublishTopology(ctx, n.Client(), "v2.yaml", []byte(v2)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "cache automatic under v2", func() (bool, string) {
		r := fo.Readiness()
		return len(r) == 1 && r[0].Mode == view.FailoverAutomatic && !r[0].At.IsZero() && !r[0].OK && !r[0].PrimaryUp, fmt.Sprint(r)
	})
}
