package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

func exchange(t *testing.T, net, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", net, m.Question[0].String(), err)
	}
	return r
}

func answers(m *dns.Msg) []string {
	g := rrStrings(m.Answer)
	slices.Sort(g)
	return g
}

func TestServerUDPAndTCP(t *testing.T) {
	topo := testTopology(t)
	reg := prometheus.NewRegistry()
	s := startServer(t, Config{Topology: topo, Source: NewStaticSource(testRouting(t, topo)), Registerer: reg})
	addr := s.Addr().String()
	eventually(t, 5*time.Second, "routing applied", func() bool { return s.Revision() == 42 })

	for _, proto := range []string{"udp", "tcp"} {
		r := exchange(t, proto, addr, query("api.svc.example.", dns.TypeA))
		if got := answers(r); !slices.Equal(got, []string{"api.svc.example. 30 A 10.2.0.11"}) || !r.Authoritative {
			t.Errorf("%s: got %q AA %v", proto, got, r.Authoritative)
		}
	}
	// Truncation and TCP retry: the UDP answer is TC and empty, the TCP one
	// is whole.
	r := exchange(t, "udp", addr, query("big.svc.example.", dns.TypeAAAA))
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("udp big: TC %v, %d answers; want TC and none", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "tcp", addr, query("big.svc.example.", dns.TypeAAAA))
	if r.Truncated || len(r.Answer) != 28 {
		t.Fatalf("tcp big: TC %v, %d answers; want 28", r.Truncated, len(r.Answer))
	}
	// Several queries on one TCP connection.
	conn, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 3; i++ {
		q := query("db.svc.example.", dns.TypeA)
		q.Id = uint16(100 + i)
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		r, err := conn.ReadMsg()
		if err != nil || r.Id != q.Id || len(r.Answer) != 1 {
			t.Fatalf("pipelined query %d: %v %v", i, r, err)
		}
	}
	if n := metricValue(t, reg, "firebreak_dns_queries_total", "A", "NOERROR"); n < 2 {
		t.Errorf("queries{A,NOERROR} = %v, want >= 2", n)
	}
	if n := metricValue(t, reg, "firebreak_dns_answer_table_revision", "", ""); n != 42 {
		t.Errorf("answer table revision metric %v, want 42", n)
	}
}

// metricValue reads one series (qtype and rcode labels, when set).
func metricValue(t *testing.T, reg *prometheus.Registry, name, qtype, rcode string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var qt, rc string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "qtype":
					qt = l.GetValue()
				case "rcode":
					rc = l.GetValue()
				}
			}
			if qt == qtype && rc == rcode {
				v = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

// TestRoutingChangeVisible: a new routing table shows in answers within one
// delivery, asserted by polling with a deadline.
func TestRoutingChangeVisible(t *testing.T) {
	topo := testTopology(t)
	src := NewStaticSource(testRouting(t, topo))
	s := startServer(t, Config{Topology: topo, Source: src})
	addr := s.Addr().String()
	eventually(t, 5*time.Second, "first routing", func() bool {
		return slices.Equal(answers(exchange(t, "udp", addr, query("api.svc.example.", dns.TypeA))), []string{"api.svc.example. 30 A 10.2.0.11"})
	})
	rt := testRouting(t, topo)
	rt.Revision = 43
	api := *rt.Routes["api"]
	api.Targets = []routing.Target{api.Targets[1]} // site b lost: a only
	api.Revision = 43
	rt.Routes["api"] = &api
	src.Set(rt)
	eventually(t, 5*time.Second, "failover to site a", func() bool {
		return slices.Equal(answers(exchange(t, "udp", addr, query("api.svc.example.", dns.TypeA))), []string{"api.svc.example. 30 A 10.1.0.11"})
	})
}

// TestCloseIdempotent: Close twice, Serve after Close, no goroutine left.
func TestCloseIdempotent(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := New(Config{Listen: "127.0.30.1:0", Topology: testTopology(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	exchange(t, "udp", s.Addr().String(), query("svc.example.", dns.TypeSOA))
	s.Close()
	s.Close()
	if err := <-done; err != ErrClosed {
		t.Fatalf("serve after close: %v, want ErrClosed", err)
	}
	if err := s.Serve(context.Background()); err != ErrClosed {
		t.Fatalf("second serve: %v", err)
	}
	eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestRRL(t *testing.T) {
	s := startServer(t, Config{Listen: "127.0.30.2:0", RRL: RRLConfig{ResponsesPerSecond: 5, Slip: 2}})
	conn, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 30
	for i := 0; i < sent; i++ {
		q := query("web.svc.example.", dns.TypeA)
		q.Id = uint16(i)
		if _, err := conn.Write(pack(t, q)); err != nil {
			t.Fatal(err)
		}
	}
	ok, truncated := 0, 0
	buf := make([]byte, 4096)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated {
			truncated++
		} else {
			ok++
		}
	}
	dropped := sent - ok - truncated
	// The window is one second; the loop may straddle a boundary.
	if ok < 5 || ok > 10 || truncated == 0 || dropped == 0 {
		t.Fatalf("ok %d truncated %d dropped %d; want 5..10 answered, some slipped, some dropped", ok, truncated, dropped)
	}
	// TCP is never limited.
	if r := exchange(t, "tcp", s.Addr().String(), query("web.svc.example.", dns.TypeA)); len(r.Answer) == 0 {
		t.Fatal("tcp answer empty")
	}
}

func TestAXFR(t *testing.T) {
	const key, secret = "xfr.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
	s := startServer(t, Config{Listen: "127.0.30.3:0", Transfer: TransferConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TSIG:  map[string]string{key: secret},
	}})
	addr := s.Addr().String()
	xfr := func(signed bool, keySecret string) ([]dns.RR, error) {
		m := new(dns.Msg)
		m.SetAxfr("svc.example.")
		tr := &dns.Transfer{}
		if signed {
			m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
			tr.TsigSecret = map[string]string{key: keySecret}
		}
		ch, err := tr.In(m, addr)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return rrs, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		return rrs, nil
	}
	rrs, err := xfr(true, secret)
	if err != nil {
		t.Fatalf("signed transfer: %v", err)
	}
	if len(rrs) < 10 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("transfer: %d records, first %v last %v", len(rrs), rrs[0], rrs[len(rrs)-1])
	}
	var sawCNAME bool
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Name == "www.svc.example." {
			sawCNAME = true
		}
	}
	if !sawCNAME {
		t.Error("transfer lacks the alias CNAME")
	}
	// A signed ordinary query gets a signed answer (the client verifies it).
	for _, proto := range []string{"udp", "tcp"} {
		q := query("web.svc.example.", dns.TypeAAAA)
		q.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second, TsigSecret: map[string]string{key: secret}}
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s signed query: %v", proto, err)
		}
		if r.IsTsig() == nil || len(r.Answer) != 1 {
			t.Fatalf("%s signed query: answer %v, tsig %v", proto, r.Answer, r.IsTsig())
		}
	}
	// IXFR (with the client's SOA in authority) gets a full transfer.
	ixfr := new(dns.Msg)
	ixfr.SetIxfr("svc.example.", 1, "ns.x.", "h.x.")
	ixfr.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	ich, err := (&dns.Transfer{TsigSecret: map[string]string{key: secret}}).In(ixfr, addr)
	if err != nil {
		t.Fatalf("ixfr: %v", err)
	}
	n := 0
	for env := range ich {
		if env.Error != nil {
			t.Fatalf("ixfr: %v", env.Error)
		}
		n += len(env.RR)
	}
	if n != len(rrs) {
		t.Fatalf("ixfr: %d records, want the full zone (%d)", n, len(rrs))
	}
	if _, err := xfr(false, ""); err == nil {
		t.Error("unsigned transfer allowed although TSIG is configured")
	}
	if _, err := xfr(true, "d3Jvbmc="); err == nil {
		t.Error("transfer with a wrong secret allowed")
	}
}

func TestAXFROffByDefault(t *testing.T) {
	s := startServer(t, Config{Listen: "127.0.30.4:0"})
	m := new(dns.Msg)
	m.SetAxfr("svc.example.")
	r := exchange(t, "tcp", s.Addr().String(), m)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

// tool finds a client binary; make test installs them (CI fails without).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (scripts/install-test-deps.sh installs it)", name)
		}
		t.Skipf("%s not installed; run scripts/install-test-deps.sh", name)
	}
	return p
}

// TestInteropDigKdig: real clients over UDP, TCP, with truncation and TCP
// retry, and with EDNS.
func TestInteropDigKdig(t *testing.T) {
	topo := testTopology(t)
	s := startServer(t, Config{Listen: "127.0.30.5:0", Topology: topo, Source: NewStaticSource(testRouting(t, topo))})
	eventually(t, 5*time.Second, "routing applied", func() bool { return s.Revision() == 42 })
	host, port := s.Addr().Addr().String(), s.Addr().Port()
	run := func(bin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	dig, kdig := tool(t, "dig"), tool(t, "kdig")
	p := "-p" + strconv.Itoa(int(port))
	cases := []struct {
		bin  string
		args []string
		want []string
	}{
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "+norec", "api.svc.example.", "A"}, []string{"status: NOERROR", "flags: qr aa;", "10.2.0.11"}},
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "+tcp", "web.svc.example.", "SRV"}, []string{"status: NOERROR", "a-1.web.svc.example.", "ADDITIONAL: 4"}},
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "nothere.svc.example.", "A"}, []string{"status: NXDOMAIN", "AUTHORITY: 1", "SOA"}},
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "example.com.", "A"}, []string{"status: REFUSED"}},
		// No EDNS: truncated over UDP, dig retries over TCP by itself.
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "+noedns", "big.svc.example.", "AAAA"}, []string{"Truncated, retrying in TCP mode", "ANSWER: 28"}},
		{dig, []string{"@" + host, "-p", strconv.Itoa(int(port)), "+bufsize=1232", "WeB.SvC.ExAmPlE.", "AAAA"}, []string{"EDNS: version: 0", "udp: 1232", "WeB.SvC.ExAmPlE."}},
		{kdig, []string{"@" + host, p, "+notcp", "near.svc.example.", "A", "+subnet=10.1.0.0/16"}, []string{"NOERROR", "10.1.0.12", "CLIENT-SUBNET: 10.1.0.0/16/16"}},
		{kdig, []string{"@" + host, p, "+tcp", "www.svc.example.", "A"}, []string{"NOERROR", "CNAME", "web.svc.example."}},
		{kdig, []string{"@" + host, p, "+notcp", "+noedns", "big.svc.example.", "AAAA"}, []string{"Flags: qr aa tc", "ANSWER: 0"}},
		{kdig, []string{"@" + host, p, "svc.example.", "ANY"}, []string{"RFC8482"}},
	}
	for _, c := range cases {
		out := run(c.bin, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %s: output lacks %q:\n%s", c.bin, strings.Join(c.args, " "), w, out)
			}
		}
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Listen: "127.0.30.6:15353", Topology: testTopology(t), Workers: 1}) }()
	eventually(t, 5*time.Second, "Run to answer", func() bool {
		c := &dns.Client{Timeout: 100 * time.Millisecond}
		r, _, err := c.Exchange(query("svc.example.", dns.TypeSOA), "127.0.30.6:15353")
		return err == nil && len(r.Answer) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("Run without a topology: no error")
	}
}

// TestIPv6 serves on [::1] when the machine has IPv6 loopback.
func TestIPv6(t *testing.T) {
	l, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
	s := startServer(t, Config{Listen: "[::1]:0", Workers: 2})
	for _, proto := range []string{"udp", "tcp"} {
		r := exchange(t, proto, s.Addr().String(), query("db.svc.example.", dns.TypeA))
		if got := answers(r); !slices.Equal(got, []string{"db.svc.example. 30 A 10.1.0.30"}) {
			t.Fatalf("%s over IPv6: %q", proto, got)
		}
	}
}

// TestSetTopology: a newly applied topology (here a new TTL) is compiled
// with the last routing and served without a restart.
func TestSetTopology(t *testing.T) {
	topo := testTopology(t)
	src := NewStaticSource(testRouting(t, topo))
	s := startServer(t, Config{Topology: topo, Source: src})
	addr := s.Addr().String()
	eventually(t, 5*time.Second, "first routing", func() bool {
		return slices.Equal(answers(exchange(t, "udp", addr, query("api.svc.example.", dns.TypeA))), []string{"api.svc.example. 30 A 10.2.0.11"})
	})
	next, err := topology.Parse("next.yaml", []byte(strings.Replace(testTopologyYAML(), "ttl: 30s", "ttl: 60s", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTopology(next); err != nil {
		t.Fatal(err)
	}
	// SetTopology swaps before it returns: no polling needed.
	if got := answers(exchange(t, "udp", addr, query("api.svc.example.", dns.TypeA))); !slices.Equal(got, []string{"api.svc.example. 60 A 10.2.0.11"}) {
		t.Errorf("after SetTopology: %v, want the new TTL with the last routing", got)
	}
	if err := s.SetTopology(nil); err == nil {
		t.Error("SetTopology(nil) accepted")
	}
}
