package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/firebreak/firebreak/internal/topology"
)

func hostPort(t *testing.T, addr string) *topology.Endpoint {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return &topology.Endpoint{Service: "s", Site: "a", Address: h, Port: port}
}

func check(t *testing.T, cs *Checkers, chk topology.Check, ep *topology.Endpoint) error {
	t.Helper()
	c, err := cs.New(chk, ep)
	if err != nil {
		t.Fatalf("New(%+v): %v", chk, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Check(ctx)
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("status: ok"))
		case "/sick":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(tls.Close)
	cs := NewCheckers(nil)
	t.Cleanup(cs.Close)
	ep := hostPort(t, srv.Listener.Addr().String())
	tep := hostPort(t, tls.Listener.Addr().String())
	tests := []struct {
		name string
		chk  topology.Check
		ep   *topology.Endpoint
		ok   bool
	}{
		{"200", topology.Check{Type: "http", Path: "/healthz"}, ep, true},
		{"body match", topology.Check{Type: "http", Path: "/healthz", Body: "ok"}, ep, true},
		{"body mismatch", topology.Check{Type: "http", Path: "/healthz", Body: "fine"}, ep, false},
		{"503", topology.Check{Type: "http", Path: "/sick"}, ep, false},
		{"expected 503", topology.Check{Type: "http", Path: "/sick", Status: 503}, ep, true},
		{"refused", topology.Check{Type: "http", Path: "/"}, hostPort(t, closedAddr(t)), false},
		{"https verify fails on self-signed", topology.Check{Type: "https"}, tep, false},
		{"https insecure", topology.Check{Type: "https", Insecure: true}, tep, true},
	}
	for _, tc := range tests {
		if err := check(t, cs, tc.chk, tc.ep); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestTCPCheckAndDialHook(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
	ep := hostPort(t, l.Addr().String())
	if err := check(t, NewCheckers(nil), topology.Check{Type: "tcp"}, ep); err != nil {
		t.Errorf("tcp up: %v", err)
	}
	if err := check(t, NewCheckers(nil), topology.Check{Type: "tcp"}, hostPort(t, closedAddr(t))); err == nil {
		t.Error("tcp to closed port: no error")
	}
	cut := errors.New("cut off")
	blocked := NewCheckers(func(context.Context, string, string) (net.Conn, error) { return nil, cut })
	if err := check(t, blocked, topology.Check{Type: "tcp"}, ep); !errors.Is(err, cut) {
		t.Errorf("dial hook: err %v, want %v", err, cut)
	}
}

func TestDNSCheck(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("svc.example.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "login.svc.example." {
			rr, _ := dns.NewRR("login.svc.example. 5 IN A 10.1.0.10")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	ep := hostPort(t, pc.LocalAddr().String())
	cs := NewCheckers(nil)
	tests := []struct {
		chk topology.Check
		ok  bool
	}{
		{topology.Check{Type: "dns", Query: "login.svc.example", Expect: "10.1.0.10"}, true},
		{topology.Check{Type: "dns", Query: "login.svc.example", QType: "A"}, true},
		{topology.Check{Type: "dns", Query: "login.svc.example", Expect: "10.9.9.9"}, false},
		{topology.Check{Type: "dns", Query: "nope.svc.example"}, false},
	}
	for _, tc := range tests {
		if err := check(t, cs, tc.chk, ep); (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.chk, err, tc.ok)
		}
	}
	if _, err := cs.New(topology.Check{Type: "dns", QType: "BOGUS"}, ep); !errors.Is(err, ErrUnknownCheck) {
		t.Errorf("bad qtype: %v", err)
	}
}

func TestGRPCCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("login", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("billing", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	ep := hostPort(t, l.Addr().String())
	cs := NewCheckers(nil)
	for _, tc := range []struct {
		svc string
		ok  bool
	}{{"", true}, {"login", true}, {"billing", false}, {"unknown", false}} {
		if err := check(t, cs, topology.Check{Type: "grpc", GRPCService: tc.svc}, ep); (err == nil) != tc.ok {
			t.Errorf("grpc service %q: err %v, want ok=%v", tc.svc, err, tc.ok)
		}
	}
	if err := check(t, cs, topology.Check{Type: "grpc"}, hostPort(t, closedAddr(t))); err == nil {
		t.Error("grpc to closed port: no error")
	}
}

func TestExecCheck(t *testing.T) {
	cs := NewCheckers(nil)
	ep := &topology.Endpoint{Service: "s", Site: "a", Address: "10.0.0.1", Port: 5432}
	for _, tc := range []struct {
		cmd []string
		ok  bool
	}{
		{[]string{"sh", "-c", `test "$FIREBREAK_PORT" = 5432`}, true},
		{[]string{"sh", "-c", "exit 1"}, false},
		{[]string{"sleep", "5"}, false}, // killed at the deadline
		{[]string{"/nonexistent/cmd"}, false},
	} {
		c, err := cs.New(topology.Check{Type: "exec", Command: tc.cmd}, ep)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err = c.Check(ctx)
		cancel()
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.cmd, err, tc.ok)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%v took %v despite a 300ms timeout", tc.cmd, d)
		}
	}
	if _, err := cs.New(topology.Check{Type: "exec"}, ep); err == nil {
		t.Error("exec without command: no error")
	}
}
