package dnsserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
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
