package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// BenchmarkRespond measures the hot path alone: parse, look up, copy,
// patch. It must report 0 allocs/op.
func BenchmarkRespond(b *testing.B) {
	tb := testTables(b)
	for _, c := range []struct {
		name string
		msg  *dns.Msg
	}{
		{"A", query("web.svc.example.", dns.TypeA)},
		{"A-EDNS", withEDNS(query("wEb.svc.example.", dns.TypeA), 1232)},
		{"SRV", query("web.svc.example.", dns.TypeSRV)},
		{"nearest-ECS", withECS(query("near.svc.example.", dns.TypeA), "10.2.0.0", 24)},
		{"NXDOMAIN", query("nothere.svc.example.", dns.TypeA)},
	} {
		b.Run(c.name, func(b *testing.B) {
			raw := pack(b, c.msg)
			w := &worker{stats: &workerStats{}}
			out := make([]byte, 4096)
			client := netip.MustParseAddr("10.1.2.3")
			b.ReportAllocs()
			for b.Loop() {
				if n, _ := w.respond(tb, raw, out, client, false); n == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// TestRespondNoAlloc makes the zero-allocation promise part of the tests.
func TestRespondNoAlloc(t *testing.T) {
	tb := testTables(t)
	raw := pack(t, withECS(query("NEAR.svc.example.", dns.TypeA), "10.2.0.0", 24))
	w := &worker{stats: &workerStats{}}
	out := make([]byte, 4096)
	client := netip.MustParseAddr("10.1.2.3")
	if n := testing.AllocsPerRun(1000, func() { w.respond(tb, raw, out, client, false) }); n != 0 {
		t.Fatalf("respond allocates %v times per query, want 0", n)
	}
}

// BenchmarkUDPLoopback measures a full round trip through the batched UDP
// path on loopback, one query in flight. The client side allocates
// nothing, so allocs/op is the server's.
func BenchmarkUDPLoopback(b *testing.B) {
	s := startServer(b, Config{Listen: "127.0.30.9:0", Workers: 1})
	conn, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	raw := pack(b, query("web.svc.example.", dns.TypeA))
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(raw); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTopology builds n services with two endpoints each, as the bench
// script's zone.
func benchTopology(b *testing.B, n int) (*topology.Topology, *routing.Table) {
	b.Helper()
	var y strings.Builder
	y.WriteString("sites: {a: {subnets: [\"10.0.0.0/16\"]}, b: {}}\nnodes:\n  - {name: fb-a, site: a, dns: \"127.0.0.1:53\"}\ndns: {zone: bench.example., ttl: 30s}\nservices:\n")
	rt := &routing.Table{Revision: 1, Routes: map[string]*routing.Route{}}
	for i := 1; i <= n; i++ {
		a1 := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		a2 := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		name := fmt.Sprintf("s%05d", i)
		fmt.Fprintf(&y, "  %s: {endpoints: [{site: a, address: %s, port: 80}, {site: b, address: %s, port: 80}]}\n", name, a1, a2)
		rt.Routes[name] = &routing.Route{Service: name, Policy: "active-active", Revision: 1, Targets: []routing.Target{
			{ID: name + "/a", Site: "a", Address: a1, Port: 80, Weight: 1}, {ID: name + "/b", Site: "b", Address: a2, Port: 80, Weight: 1}}}
	}
	topo, err := topology.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	return topo, rt
}

// BenchmarkBuild measures compiling the answer tables, the work done off
// the hot path on every routing change.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			topo, rt := benchTopology(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := build(topo, rt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
