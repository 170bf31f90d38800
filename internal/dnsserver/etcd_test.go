package dnsserver

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/store/storetest"
)

// startEtcd runs one store member on 127.0.30.20; stop closes it (also at
// cleanup, once).
func startEtcd(t *testing.T) (cli *clientv3.Client, stop func()) {
	t.Helper()
	cli, _, stop = storetest.Start(t, "127.0.30.20")
	return cli, stop
}

func putRoute(t *testing.T, cli *clientv3.Client, r *routing.Route) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, store.RoutingPrefix+r.Service, string(b)); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdSource: routes written to a real etcd appear in answers within a
// watch round trip; when etcd goes away the last answers keep being served
// and TXT says since when the data is stale.
func TestEtcdSource(t *testing.T) {
	cli, stopEtcd := startEtcd(t)
	topo := testTopology(t)
	putRoute(t, cli, &routing.Route{Service: "api", Policy: "failover", Targets: []routing.Target{tgt("b", "10.2.0.11", 443, 1)}})

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src := NewEtcdSource(ctx, cli, EtcdOptions{Probe: 200 * time.Millisecond})
	t.Cleanup(func() { src.Close() })
	s := startServer(t, Config{Listen: "127.0.30.21:0", Topology: topo, Source: src})
	addr := s.Addr().String()
	apiA := func() []string {
		return answers(exchange(t, "udp", addr, query("api.svc.example.", dns.TypeA)))
	}
	eventually(t, 10*time.Second, "route from etcd", func() bool {
		return slices.Equal(apiA(), []string{"api.svc.example. 30 A 10.2.0.11"})
	})
	putRoute(t, cli, &routing.Route{Service: "api", Policy: "failover", Targets: []routing.Target{tgt("a", "10.1.0.11", 443, 1)}})
	eventually(t, 10*time.Second, "route change from etcd", func() bool {
		return slices.Equal(apiA(), []string{"api.svc.example. 30 A 10.1.0.11"})
	})
	txt := func() string {
		r := exchange(t, "udp", addr, query("svc.example.", dns.TypeTXT))
		return strings.Join(rrStrings(r.Answer), " ")
	}
	if got := txt(); !strings.Contains(got, `"fresh"`) {
		t.Fatalf("apex TXT %q, want fresh", got)
	}

	stopEtcd()
	eventually(t, 15*time.Second, "stale TXT", func() bool { return strings.Contains(txt(), "stale since ") })
	if got := apiA(); !slices.Equal(got, []string{"api.svc.example. 30 A 10.1.0.11"}) {
		t.Fatalf("after losing the store: %q, want the last answer", got)
	}
}
