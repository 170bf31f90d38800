package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// testTopologyYAML is the zone most tests answer from. "big" has enough
// endpoints that its AAAA answer does not fit 512 bytes, and its SRV answer
// fits 1232 bytes only without the glue.
func testTopologyYAML() string {
	var big strings.Builder
	for i := 1; i <= 28; i++ {
		fmt.Fprintf(&big, "      - {site: a, address: \"2001:db8:1::%x\", port: 8080}\n", i)
	}
	return `
sites:
  a: {subnets: ["10.1.0.0/16", "2001:db8:1::/48"]}
  b: {subnets: ["10.2.0.0/16"]}
  w: {role: witness}
nodes:
  - {name: fb-a, site: a, dns: "192.0.2.1:53"}
  - {name: fb-b, site: b, dns: "[2001:db8::53]:53"}
  - {name: fb-w, site: w, dns: "192.0.2.3:53"}
dns:
  zone: Svc.Example
  ttl: 30s
services:
  web:
    aliases: [www, portal]
    endpoints:
      - {site: a, address: 10.1.0.10, port: 80, weight: 3}
      - {site: b, address: 10.2.0.10, port: 80, weight: 1}
      - {site: b, address: "2001:db8:2::10", port: 80}
  api:
    policy: failover
    failover: [b, a]
    endpoints:
      - {site: a, address: 10.1.0.11, port: 443}
      - {site: b, address: 10.2.0.11, port: 443}
  near:
    policy: nearest
    endpoints:
      - {site: a, address: 10.1.0.12, port: 53}
      - {site: b, address: 10.2.0.12, port: 53}
  down:
    endpoints:
      - {site: a, address: 10.1.0.13, port: 80}
  big:
    endpoints:
` + big.String() + `
datastores:
  db:
    engine: postgres
    primary: a
    address: 10.1.0.30
    port: 5432
`
}

func testTopology(t testing.TB) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse("test.yaml", []byte(testTopologyYAML()))
	if err != nil {
		t.Fatalf("parse test topology: %v", err)
	}
	return topo
}

func tgt(site, addr string, port, weight int) routing.Target {
	return routing.Target{ID: "x/" + site + "/" + addr, Site: site, Address: addr, Port: port, Weight: weight}
}

// testRouting is the routing the table tests expect.
func testRouting(t testing.TB, topo *topology.Topology) *routing.Table {
	t.Helper()
	ep := func(svc string, i int) routing.Target {
		e := topo.Service(svc).Endpoints[i]
		return routing.Target{ID: e.ID(), Site: e.Site, Address: e.Address, Port: e.Port, Weight: e.Weight}
	}
	return &routing.Table{
		Revision: 42,
		Routes: map[string]*routing.Route{
			"web": {Service: "web", Policy: "active-active", Revision: 40,
				Targets: []routing.Target{ep("web", 0), ep("web", 1), ep("web", 2)}},
			"api": {Service: "api", Policy: "failover", Revision: 41,
				Targets: []routing.Target{ep("api", 1), ep("api", 0)}},
			"near": {Service: "near", Policy: "nearest", Revision: 42,
				Targets: []routing.Target{ep("near", 0), ep("near", 1)},
				BySite: map[string][]routing.Target{
					"a": {ep("near", 0)},
					"b": {ep("near", 1)},
				}},
			"down": {Service: "down", Policy: "active-active", Revision: 3, Targets: nil},
			"db":   {Service: "db", Policy: "failover", Revision: 5, Targets: []routing.Target{tgt("a", "10.1.0.30", 5432, 0)}},
		},
	}
}

func testTables(t testing.TB) *tables {
	t.Helper()
	topo := testTopology(t)
	tb, err := build(topo, testRouting(t, topo))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return tb
}

// ask runs a query through the hot path in process and unpacks the answer.
// It returns nil when the server stays silent.
func ask(t testing.TB, tb *tables, raw []byte, client netip.Addr, tcp bool) *dns.Msg {
	t.Helper()
	w := &worker{stats: &workerStats{}}
	out := make([]byte, 65535)
	n, slow := w.respond(tb, raw, out, client, tcp)
	if slow {
		t.Fatalf("unexpected slow path")
	}
	if n == 0 {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out[:n]); err != nil {
		t.Fatalf("server sent a malformed message (%d bytes): %v", n, err)
	}
	return m
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xBEEF
	return m
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}

// rrStrings lists records as "owner TTL type data" without the class.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(append(f[:2:2], f[3:]...), " "))
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServer runs a server for the test and stops it at cleanup.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Topology == nil {
		cfg.Topology = testTopology(t)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
		s.Close()
	})
	return s
}
