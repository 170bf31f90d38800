package dnsserver

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/routing"
)

const soaLine = "svc.example. 30 SOA fb-a.ns.svc.example. hostmaster.svc.example. 42 60 10 3600 30"

func withEDNS(m *dns.Msg, size uint16) *dns.Msg {
	m.SetEdns0(size, false)
	return m
}

func withECS(m *dns.Msg, addr string, bits uint8) *dns.Msg {
	m.SetEdns0(1232, false)
	ip := netip.MustParseAddr(addr)
	e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, SourceNetmask: bits, Address: ip.AsSlice()}
	e.Family = 1
	if ip.Is6() {
		e.Family = 2
	}
	m.IsEdns0().Option = append(m.IsEdns0().Option, e)
	return m
}

// TestResponses checks every response class against what the RFCs ask:
// RFC 1034/1035 (answers, AA, REFUSED, FORMERR, NOTIMP, case), RFC 2308
// (NXDOMAIN vs NODATA with the SOA, negative TTL = min(SOA TTL, MINIMUM)),
// RFC 4343 (case-insensitive names, case preserved), RFC 6891 (EDNS,
// BADVERS), RFC 7871 (client subnet scope), RFC 8482 (ANY), RFC 1035 4.2.1
// and RFC 2181 9 (TC when a UDP answer does not fit; additional data may be
// dropped without TC).
func TestResponses(t *testing.T) {
	tb := testTables(t)
	clientA := netip.MustParseAddr("10.1.5.5")
	clientB := netip.MustParseAddr("10.2.5.5")
	other := netip.MustParseAddr("192.168.9.9")

	type want struct {
		silent bool
		rcode  int
		aa, tc bool
		noQ    bool
		answer []string
		ns     []string
		extra  []string
		opt    bool
		ecs    int // expected ECS scope, -1: no ECS option
	}
	cases := []struct {
		name   string
		msg    *dns.Msg
		raw    func([]byte) []byte
		client netip.Addr
		tcp    bool
		want   want
	}{
		{name: "A active-active returns every healthy target", msg: query("web.svc.example.", dns.TypeA),
			want: want{aa: true, answer: []string{"web.svc.example. 30 A 10.1.0.10", "web.svc.example. 30 A 10.2.0.10"}}},
		{name: "AAAA", msg: query("web.svc.example.", dns.TypeAAAA),
			want: want{aa: true, answer: []string{"web.svc.example. 30 AAAA 2001:db8:2::10"}}},
		{name: "SRV with weights, ports and glue", msg: query("web.svc.example.", dns.TypeSRV),
			want: want{aa: true,
				answer: []string{
					"web.svc.example. 30 SRV 0 1 80 b-1.web.svc.example.",
					"web.svc.example. 30 SRV 0 1 80 b-2.web.svc.example.",
					"web.svc.example. 30 SRV 0 3 80 a-1.web.svc.example.",
				},
				extra: []string{
					"a-1.web.svc.example. 30 A 10.1.0.10",
					"b-1.web.svc.example. 30 A 10.2.0.10",
					"b-2.web.svc.example. 30 AAAA 2001:db8:2::10",
				}}},
		{name: "SRV target host resolves", msg: query("b-2.web.svc.example.", dns.TypeAAAA),
			want: want{aa: true, answer: []string{"b-2.web.svc.example. 30 AAAA 2001:db8:2::10"}}},
		{name: "TXT carries revisions and freshness", msg: query("web.svc.example.", dns.TypeTXT),
			want: want{aa: true, answer: []string{`web.svc.example. 30 TXT "service=web" "policy=active-active" "route-revision=40" "revision=42" "fresh"`}}},
		{name: "NODATA: existing name, missing type, SOA in authority", msg: query("web.svc.example.", dns.TypeMX),
			want: want{aa: true, ns: []string{soaLine}}},
		{name: "NXDOMAIN with SOA", msg: query("nothere.svc.example.", dns.TypeA),
			want: want{rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine}}},
		{name: "NXDOMAIN below an existing name", msg: query("x.web.svc.example.", dns.TypeA),
			want: want{rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine}}},
		{name: "empty non-terminal is NODATA", msg: query("ns.svc.example.", dns.TypeA),
			want: want{aa: true, ns: []string{soaLine}}},
		{name: "outside the zone is REFUSED without AA", msg: query("example.com.", dns.TypeA),
			want: want{rcode: dns.RcodeRefused}},
		{name: "label boundary: xsvc.example is outside", msg: query("xsvc.example.", dns.TypeA),
			want: want{rcode: dns.RcodeRefused}},
		{name: "parent of the zone is outside", msg: query("example.", dns.TypeSOA),
			want: want{rcode: dns.RcodeRefused}},
		{name: "apex SOA", msg: query("svc.example.", dns.TypeSOA),
			want: want{aa: true, answer: []string{soaLine}}},
		{name: "apex NS with glue", msg: query("svc.example.", dns.TypeNS),
			want: want{aa: true,
				answer: []string{"svc.example. 30 NS fb-a.ns.svc.example.", "svc.example. 30 NS fb-b.ns.svc.example.", "svc.example. 30 NS fb-w.ns.svc.example."},
				extra:  []string{"fb-a.ns.svc.example. 30 A 192.0.2.1", "fb-b.ns.svc.example. 30 AAAA 2001:db8::53", "fb-w.ns.svc.example. 30 A 192.0.2.3"}}},
		{name: "apex TXT", msg: query("svc.example.", dns.TypeTXT),
			want: want{aa: true, answer: []string{`svc.example. 30 TXT "revision=42" "fresh"`}}},
		{name: "name server address", msg: query("fb-a.ns.svc.example.", dns.TypeA),
			want: want{aa: true, answer: []string{"fb-a.ns.svc.example. 30 A 192.0.2.1"}}},
		{name: "alias: CNAME followed in zone", msg: query("www.svc.example.", dns.TypeA),
			want: want{aa: true, answer: []string{"web.svc.example. 30 A 10.1.0.10", "web.svc.example. 30 A 10.2.0.10", "www.svc.example. 30 CNAME web.svc.example."}}},
		{name: "alias: CNAME query", msg: query("portal.svc.example.", dns.TypeCNAME),
			want: want{aa: true, answer: []string{"portal.svc.example. 30 CNAME web.svc.example."}}},
		{name: "alias: type the target lacks", msg: query("www.svc.example.", dns.TypeMX),
			want: want{aa: true, answer: []string{"www.svc.example. 30 CNAME web.svc.example."}}},
		{name: "failover: first site in the route only", msg: query("api.svc.example.", dns.TypeA),
			want: want{aa: true, answer: []string{"api.svc.example. 30 A 10.2.0.11"}}},
		{name: "nearest: client in site a", msg: query("near.svc.example.", dns.TypeA), client: clientA,
			want: want{aa: true, answer: []string{"near.svc.example. 30 A 10.1.0.12"}}},
		{name: "nearest: client in site b", msg: query("near.svc.example.", dns.TypeA), client: clientB,
			want: want{aa: true, answer: []string{"near.svc.example. 30 A 10.2.0.12"}}},
		{name: "nearest: unknown client gets every target", msg: query("near.svc.example.", dns.TypeA), client: other,
			want: want{aa: true, answer: []string{"near.svc.example. 30 A 10.1.0.12", "near.svc.example. 30 A 10.2.0.12"}}},
		{name: "nearest: ECS wins over the source address, scope echoed", msg: withECS(query("near.svc.example.", dns.TypeA), "10.2.3.0", 24), client: clientA,
			want: want{aa: true, opt: true, ecs: 24, answer: []string{"near.svc.example. 30 A 10.2.0.12"}}},
		{name: "ECS on a name that does not vary: scope 0", msg: withECS(query("web.svc.example.", dns.TypeAAAA), "10.2.3.0", 24),
			want: want{aa: true, opt: true, ecs: 0, answer: []string{"web.svc.example. 30 AAAA 2001:db8:2::10"}}},
		{name: "route with no healthy target: NODATA", msg: query("down.svc.example.", dns.TypeA),
			want: want{aa: true, ns: []string{soaLine}}},
		{name: "datastore primary", msg: query("db.svc.example.", dns.TypeA),
			want: want{aa: true, answer: []string{"db.svc.example. 30 A 10.1.0.30"}}},
		{name: "ANY: RFC 8482 HINFO", msg: query("web.svc.example.", dns.TypeANY),
			want: want{aa: true, answer: []string{`web.svc.example. 30 HINFO "RFC8482" ""`}}},
		{name: "0x20 case is preserved, match is case-insensitive", msg: query("WeB.SvC.eXaMpLe.", dns.TypeAAAA),
			want: want{aa: true, answer: []string{"WeB.SvC.eXaMpLe. 30 AAAA 2001:db8:2::10"}}},
		{name: "EDNS: OPT in the answer", msg: withEDNS(query("web.svc.example.", dns.TypeAAAA), 4096),
			want: want{aa: true, opt: true, answer: []string{"web.svc.example. 30 AAAA 2001:db8:2::10"}}},
		{name: "EDNS version 1: BADVERS", msg: func() *dns.Msg {
			m := withEDNS(query("web.svc.example.", dns.TypeA), 1232)
			m.IsEdns0().SetVersion(1)
			return m
		}(), want: want{rcode: dns.RcodeBadVers, opt: true}},
		{name: "UDP without EDNS: too big, TC", msg: query("big.svc.example.", dns.TypeAAAA),
			want: want{aa: true, tc: true}},
		{name: "UDP with EDNS 1232: fits", msg: withEDNS(query("big.svc.example.", dns.TypeAAAA), 1232),
			want: want{aa: true, opt: true, answer: bigAnswer()}},
		{name: "TCP: fits", msg: query("big.svc.example.", dns.TypeAAAA), tcp: true,
			want: want{aa: true, answer: bigAnswer()}},
		{name: "opcode NOTIFY: NOTIMP", msg: func() *dns.Msg { m := query("svc.example.", dns.TypeSOA); m.Opcode = dns.OpcodeNotify; return m }(),
			want: want{rcode: dns.RcodeNotImplemented}},
		{name: "opcode UPDATE: NOTIMP", msg: func() *dns.Msg { m := query("svc.example.", dns.TypeSOA); m.Opcode = dns.OpcodeUpdate; return m }(),
			want: want{rcode: dns.RcodeNotImplemented}},
		{name: "class CHAOS: REFUSED", msg: func() *dns.Msg {
			m := query("version.bind.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(),
			want: want{rcode: dns.RcodeRefused}},
		{name: "AXFR over UDP: NOTIMP", msg: query("svc.example.", dns.TypeAXFR),
			want: want{rcode: dns.RcodeNotImplemented}},
		{name: "qtype 0: FORMERR", msg: query("svc.example.", 0),
			want: want{rcode: dns.RcodeFormatError}},
		{name: "no question: FORMERR", msg: func() *dns.Msg { m := query("svc.example.", dns.TypeA); m.Question = nil; return m }(),
			want: want{rcode: dns.RcodeFormatError, noQ: true}},
		{name: "two questions: FORMERR", msg: func() *dns.Msg {
			m := query("svc.example.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), want: want{rcode: dns.RcodeFormatError, noQ: true}},
		{name: "answer section in a query: FORMERR", msg: func() *dns.Msg {
			m := query("svc.example.", dns.TypeA)
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "svc.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}}}
			return m
		}(), want: want{rcode: dns.RcodeFormatError}},
		{name: "truncated question: FORMERR", msg: query("web.svc.example.", dns.TypeA),
			raw: func(b []byte) []byte { return b[:len(b)-3] }, want: want{rcode: dns.RcodeFormatError, noQ: true}},
		{name: "bad ECS: FORMERR", msg: withECS(query("near.svc.example.", dns.TypeA), "10.2.3.0", 24),
			raw:  func(b []byte) []byte { b[len(b)-5] = 40; return b }, // source prefix 40 > 32
			want: want{rcode: dns.RcodeFormatError}},
		{name: "a response is never answered", msg: func() *dns.Msg { m := query("svc.example.", dns.TypeA); m.Response = true; return m }(),
			want: want{silent: true}},
		{name: "shorter than a header: silence", msg: query("svc.example.", dns.TypeA),
			raw: func(b []byte) []byte { return b[:11] }, want: want{silent: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := pack(t, c.msg)
			if c.raw != nil {
				raw = c.raw(raw)
			}
			client := c.client
			if !client.IsValid() {
				client = other
			}
			got := ask(t, tb, raw, client, c.tcp)
			if c.want.silent {
				if got != nil {
					t.Fatalf("want no answer, got\n%v", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no answer")
			}
			if got.Id != 0xBEEF || !got.Response {
				t.Errorf("id %#x response %v, want 0xbeef true", got.Id, got.Response)
			}
			if got.Rcode != c.want.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[c.want.rcode])
			}
			if got.Authoritative != c.want.aa {
				t.Errorf("AA %v, want %v", got.Authoritative, c.want.aa)
			}
			if got.Truncated != c.want.tc {
				t.Errorf("TC %v, want %v", got.Truncated, c.want.tc)
			}
			if got.RecursionAvailable {
				t.Error("RA set by an authoritative-only server")
			}
			if got.RecursionDesired != c.msg.RecursionDesired {
				t.Error("RD not copied")
			}
			if !c.want.noQ {
				if len(got.Question) != 1 || got.Question[0].Name != c.msg.Question[0].Name || got.Question[0].Qtype != c.msg.Question[0].Qtype {
					t.Errorf("question %v, want %v (case preserved)", got.Question, c.msg.Question)
				}
			}
			check := func(sec string, gotRR []dns.RR, want []string) {
				t.Helper()
				g := rrStrings(gotRR)
				slices.Sort(g)
				w := slices.Clone(want)
				slices.Sort(w)
				if !slices.Equal(g, w) {
					t.Errorf("%s:\n got %q\nwant %q", sec, g, w)
				}
			}
			check("answer", got.Answer, c.want.answer)
			check("authority", got.Ns, c.want.ns)
			check("additional", got.Extra, c.want.extra)
			opt := got.IsEdns0()
			if (opt != nil) != c.want.opt {
				t.Fatalf("OPT present %v, want %v", opt != nil, c.want.opt)
			}
			if opt != nil {
				if opt.UDPSize() != udpPayload || opt.Do() {
					t.Errorf("OPT size %d DO %v, want %d false", opt.UDPSize(), opt.Do(), udpPayload)
				}
				var scope = -1
				for _, o := range opt.Option {
					if e, ok := o.(*dns.EDNS0_SUBNET); ok {
						scope = int(e.SourceScope)
					}
				}
				wantScope := c.want.ecs
				if c.msg.IsEdns0() != nil && !hasECS(c.msg) {
					wantScope = -1
				}
				if scope != wantScope {
					t.Errorf("ECS scope %d, want %d", scope, wantScope)
				}
			}
		})
	}
}

func hasECS(m *dns.Msg) bool {
	for _, o := range m.IsEdns0().Option {
		if _, ok := o.(*dns.EDNS0_SUBNET); ok {
			return true
		}
	}
	return false
}

func bigAnswer() []string {
	var out []string
	for i := 1; i <= 28; i++ {
		out = append(out, "big.svc.example. 30 AAAA 2001:db8:1::"+strconv.FormatInt(int64(i), 16))
	}
	return out
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSRVTooBigDropsAdditional: RFC 2181 9 — additional data that does not
// fit is dropped without setting TC.
func TestSRVTooBigDropsAdditional(t *testing.T) {
	tb := testTables(t)
	m := ask(t, tb, pack(t, withEDNS(query("big.svc.example.", dns.TypeSRV), 1232)), netip.Addr{}, false)
	if m.Truncated || len(m.Answer) != 28 || len(m.Extra) != 1 {
		t.Fatalf("TC %v, %d answers, %d additional; want false, 28, only OPT", m.Truncated, len(m.Answer), len(m.Extra))
	}
	m = ask(t, tb, pack(t, query("big.svc.example.", dns.TypeSRV)), netip.Addr{}, true)
	if len(m.Answer) != 28 || len(m.Extra) != 28 {
		t.Fatalf("TCP: %d answers, %d additional; want 28, 28", len(m.Answer), len(m.Extra))
	}
}

// TestWeightedRotation: over a full schedule, each target leads in
// proportion to its weight. web's targets weigh 3 (a-1, IPv4), 1 (b-1,
// IPv4) and 1 (b-2, IPv6): of 5 slots a-1 leads 3, b-1 one, and b-2 one,
// where the A answer (b-2, a-1, b-1) starts with a-1: 4:1 for A.
func TestWeightedRotation(t *testing.T) {
	tb := testTables(t)
	w := &worker{}
	out := make([]byte, 4096)
	raw := pack(t, query("web.svc.example.", dns.TypeA))
	first := map[string]int{}
	for i := 0; i < 5*80; i++ {
		n, _ := w.respond(tb, raw, out, netip.Addr{}, false)
		m := new(dns.Msg)
		if err := m.Unpack(out[:n]); err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 2 {
			t.Fatalf("want 2 answers, got %d", len(m.Answer))
		}
		first[m.Answer[0].(*dns.A).A.String()]++
	}
	if first["10.1.0.10"] != 320 || first["10.2.0.10"] != 80 {
		t.Fatalf("leaders %v, want 10.1.0.10:320 10.2.0.10:80", first)
	}
}

// TestStaleTXT: a stale table says so in TXT.
func TestStaleTXT(t *testing.T) {
	topo := testTopology(t)
	rt := testRouting(t, topo)
	rt.Stale = true
	rt.StaleSince = mustTime("2026-12-01T06:00:00Z")
	tb, err := build(topo, rt)
	if err != nil {
		t.Fatal(err)
	}
	m := ask(t, tb, pack(t, query("svc.example.", dns.TypeTXT)), netip.Addr{}, false)
	want := `svc.example. 30 TXT "revision=42" "stale since 2026-12-01T06:00:00Z"`
	if g := rrStrings(m.Answer); len(g) != 1 || g[0] != want {
		t.Fatalf("got %q, want %q", g, want)
	}
}

// TestHugeServiceFits: a service with more targets than fit a TCP message
// still builds (answers are capped) and answers over TCP.
func TestHugeServiceFits(t *testing.T) {
	topo := testTopology(t)
	rt := testRouting(t, topo)
	var ts []routing.Target
	for i := 0; i < 3000; i++ {
		ts = append(ts, routing.Target{ID: strconv.Itoa(i), Site: "a", Address: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}).String(), Port: 80})
	}
	rt.Routes["web"] = &routing.Route{Service: "web", Policy: "active-active", Targets: ts}
	tb, err := build(topo, rt)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	m := ask(t, tb, pack(t, query("web.svc.example.", dns.TypeA)), netip.Addr{}, true)
	if len(m.Answer) != maxTargets {
		t.Fatalf("%d answers, want %d", len(m.Answer), maxTargets)
	}
}
