package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/firebreak/firebreak/internal/topology"
)

// Checker checks one endpoint once. Check must honour ctx's deadline, must
// be safe for concurrent use, and returns nil when the endpoint is up.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) error

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// DialFunc opens a connection; it has the signature of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrUnknownCheck is returned by NewChecker for an unknown check type.
var ErrUnknownCheck = errors.New("unknown check type")

// Checkers builds checkers for endpoints. It holds shared HTTP transports
// and the dial function every network check uses. The zero value is not
// usable; call NewCheckers.
type Checkers struct {
	dial           DialFunc
	verify, noVeri *http.Transport
}

// NewCheckers returns a checker factory. dial may be nil (a plain
// net.Dialer); tests use it to make one observer's checks fail.
func NewCheckers(dial DialFunc) *Checkers {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	mk := func(skip bool) *http.Transport {
		return &http.Transport{
			DialContext: dial,
			// A health check opens a fresh connection every time, as a new
			// client would: a half-dead server cannot hide behind an idle
			// keep-alive connection, and 100,000 endpoints hold no sockets.
			DisableKeepAlives:     true,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: skip}, //nolint:gosec // per-service opt-in
			ResponseHeaderTimeout: 0,
		}
	}
	return &Checkers{dial: dial, verify: mk(false), noVeri: mk(true)}
}

// Close releases idle connections.
func (c *Checkers) Close() {
	c.verify.CloseIdleConnections()
	c.noVeri.CloseIdleConnections()
}

// New returns the checker for ep with check c (defaults already applied).
func (c *Checkers) New(chk topology.Check, ep *topology.Endpoint) (Checker, error) {
	addr := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	switch chk.Type {
	case topology.CheckHTTP, topology.CheckHTTPS:
		tr := c.verify
		if chk.Insecure {
			tr = c.noVeri
		}
		path := chk.Path
		if path == "" {
			path = "/"
		} else if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		status := chk.Status
		if status == 0 {
			status = http.StatusOK
		}
		return &httpCheck{client: &http.Client{Transport: tr, CheckRedirect: noRedirect},
			url: chk.Type + "://" + addr + path, status: status, body: chk.Body}, nil
	case topology.CheckTCP, "":
		return &tcpCheck{dial: c.dial, addr: addr}, nil
	case topology.CheckDNS:
		qt, ok := dns.StringToType[strings.ToUpper(chk.QType)]
		if chk.QType == "" {
			qt, ok = dns.TypeA, true
		}
		if !ok {
			return nil, fmt.Errorf("dns check qtype %q: %w", chk.QType, ErrUnknownCheck)
		}
		q := chk.Query
		if q == "" {
			q = "."
		}
		return &dnsCheck{dial: c.dial, addr: addr, name: dns.Fqdn(q), qtype: qt, expect: chk.Expect}, nil
	case topology.CheckGRPC:
		return &grpcCheck{dial: c.dial, addr: addr, service: chk.GRPCService}, nil
	case topology.CheckExec:
		if len(chk.Command) == 0 {
			return nil, fmt.Errorf("exec check for %s: empty command", ep.ID())
		}
		return &execCheck{argv: chk.Command, env: []string{
			"FIREBREAK_ENDPOINT=" + ep.ID(), "FIREBREAK_ADDRESS=" + ep.Address, "FIREBREAK_PORT=" + strconv.Itoa(ep.Port)}}, nil
	}
	return nil, fmt.Errorf("check type %q: %w", chk.Type, ErrUnknownCheck)
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

type httpCheck struct {
	client *http.Client
	url    string
	status int
	body   string
}

func (h *httpCheck) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return fmt.Errorf("http check: %w", err)
	}
	req.Header.Set("User-Agent", "firebreak-probe")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("http check: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != h.status {
		return fmt.Errorf("http check %s: status %d, want %d", h.url, resp.StatusCode, h.status)
	}
	if h.body == "" {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("http check %s: read body: %w", h.url, err)
	}
	if !strings.Contains(string(b), h.body) {
		return fmt.Errorf("http check %s: body lacks %q", h.url, h.body)
	}
	return nil
}

type tcpCheck struct {
	dial DialFunc
	addr string
}

func (t *tcpCheck) Check(ctx context.Context) error {
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return fmt.Errorf("tcp check: %w", err)
	}
	// Reset instead of a graceful close: a checker that connects 100,000
	// times a second must not leave TIME_WAIT sockets behind (HAProxy's
	// tcp-check does the same).
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c.Close()
}

type dnsCheck struct {
	dial   DialFunc
	addr   string
	name   string
	qtype  uint16
	expect string
}

func (d *dnsCheck) Check(ctx context.Context) error {
	c, err := d.dial(ctx, "udp", d.addr)
	if err != nil {
		return fmt.Errorf("dns check: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	conn := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion(d.name, d.qtype)
	if err := conn.WriteMsg(m); err != nil {
		return fmt.Errorf("dns check %s: write: %w", d.addr, err)
	}
	r, err := conn.ReadMsg()
	if err != nil {
		return fmt.Errorf("dns check %s: read: %w", d.addr, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dns check %s %s: rcode %s", d.addr, d.name, dns.RcodeToString[r.Rcode])
	}
	if d.expect == "" {
		return nil
	}
	for _, rr := range r.Answer {
		if strings.Contains(rr.String(), d.expect) {
			return nil
		}
	}
	return fmt.Errorf("dns check %s %s: no answer contains %q", d.addr, d.name, d.expect)
}

type grpcCheck struct {
	dial    DialFunc
	addr    string
	service string
}

func (g *grpcCheck) Check(ctx context.Context) error {
	// A fresh client per check: a cached one would hide a dead server behind
	// reconnect backoff and delay noticing its return.
	cc, err := grpc.NewClient("passthrough:///"+g.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return g.dial(ctx, "tcp", a) }))
	if err != nil {
		return fmt.Errorf("grpc check %s: %w", g.addr, err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: g.service})
	if err != nil {
		return fmt.Errorf("grpc check %s: %w", g.addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc check %s service %q: %s", g.addr, g.service, s)
	}
	return nil
}

type execCheck struct {
	argv []string
	env  []string
}

func (e *execCheck) Check(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Env = append(cmd.Environ(), e.env...)
	cmd.WaitDelay = 100 * time.Millisecond
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("exec check %s: %w: %s", e.argv[0], err, msg)
	}
	return nil
}
