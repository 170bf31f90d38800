package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond: any packet gets either silence or a well-formed response
// with the query's ID, and never a panic.
func FuzzRespond(f *testing.F) {
	tb := testTables(f)
	seeds := []*dns.Msg{
		query("web.svc.example.", dns.TypeA),
		query("WWW.svc.example.", dns.TypeSRV),
		withEDNS(query("big.svc.example.", dns.TypeAAAA), 4096),
		withECS(query("near.svc.example.", dns.TypeA), "10.2.0.0", 24),
		withECS(query("near.svc.example.", dns.TypeA), "2001:db8:1::", 48),
		query("nothere.svc.example.", dns.TypeTXT),
		query("example.com.", dns.TypeA),
		query("svc.example.", dns.TypeANY),
	}
	for _, m := range seeds {
		f.Add(pack(f, m), false)
		f.Add(pack(f, m), true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1}, false)
	f.Add([]byte{}, false)
	w := &worker{stats: &workerStats{}}
	out := make([]byte, 65535)
	f.Fuzz(func(t *testing.T, q []byte, tcp bool) {
		n, slow := w.respond(tb, q, out, netip.MustParseAddr("10.1.0.1"), tcp)
		if slow || n == 0 {
			return
		}
		if !tcp && n > udpPayload {
			t.Fatalf("UDP response of %d bytes", n)
		}
		m := new(dns.Msg)
		if err := m.Unpack(out[:n]); err != nil {
			t.Fatalf("malformed response to %x: %v", q, err)
		}
		if m.Id != be16(q) || !m.Response {
			t.Fatalf("response id %#x qr %v for query id %#x", m.Id, m.Response, be16(q))
		}
	})
}
