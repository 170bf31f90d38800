package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// Config configures a Server. Topology is required; every other field has a
// default.
type Config struct {
	// Listen is the UDP and TCP address (default "127.0.0.1:53"). Port 0
	// picks a free port, the same for UDP and TCP; see Server.Addr.
	Listen string
	// Topology supplies the zone, TTL, names, policies, nodes and subnets.
	Topology *topology.Topology
	// Source delivers routing tables. Nil serves the topology's declared
	// endpoints only (as if every endpoint were healthy).
	Source Source
	// Workers is the number of UDP readers, each on its own SO_REUSEPORT
	// socket (default: the number of CPUs).
	Workers int
	// Batch is how many datagrams one recvmmsg/sendmmsg call moves
	// (default 32).
	Batch int
	// SocketBuffer is the SO_RCVBUF and SO_SNDBUF asked for each UDP
	// socket (default 4 MiB, capped by the kernel's net.core.rmem_max and
	// wmem_max); negative keeps the kernel default. A large buffer absorbs
	// bursts instead of dropping them, at the price of queueing delay when
	// the server is overloaded.
	SocketBuffer int
	// RRL configures response-rate limiting (default off).
	RRL RRLConfig
	// Transfer configures zone transfers (default off).
	Transfer TransferConfig
	// TCPIdleTimeout closes idle TCP connections (default 10s).
	TCPIdleTimeout time.Duration
	// MaxTCPConns bounds concurrent TCP connections (default 1024).
	MaxTCPConns int
	// Registerer, when set, receives the server's metrics.
	Registerer prometheus.Registerer
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
}

// TransferConfig configures AXFR (RFC 5936). Transfers are refused unless
// the client's address is in Allow; when TSIG keys are set, a transfer must
// also be signed with one of them.
type TransferConfig struct {
	// Allow lists the secondaries' networks. Empty (the default) turns
	// zone transfers off.
	Allow []netip.Prefix
	// TSIG maps key names (FQDN, e.g. "xfr.") to base64 secrets
	// (HMAC-SHA256). Empty: no TSIG required.
	TSIG map[string]string
}

// Server is a running authoritative DNS server. Create it with New, run it
// with Serve, stop it with Close (or by cancelling Serve's context).
type Server struct {
	cfg    Config
	log    *slog.Logger
	tables atomic.Pointer[tables]
	builds atomic.Uint64

	// buildMu orders rebuilds (routing updates and topology changes) so
	// that an older build never replaces a newer one; queries never take it.
	buildMu sync.Mutex
	top     *topology.Topology // guarded by buildMu
	last    *routing.Table     // guarded by buildMu: the last routing applied
	rrl     *rrl

	udp   []*net.UDPConn
	tcp   *net.TCPListener
	stats []*workerStats
	tcpSt *workerStats
	addr  netip.AddrPort

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
	serving   atomic.Bool
}

// udpSocketBuffer is the default SO_RCVBUF/SO_SNDBUF of each UDP socket.
const udpSocketBuffer = 4 << 20

// ErrClosed is returned by Serve when the server was closed before or while
// serving.
var ErrClosed = errors.New("dns server closed")

// New validates cfg, compiles the first answer tables and opens the
// sockets; nothing is served until Serve. On error nothing is left open.
func New(cfg Config) (s *Server, err error) {
	if cfg.Topology == nil {
		return nil, errors.New("dns server: no topology")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:53"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = udpSocketBuffer
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for name, secret := range cfg.Transfer.TSIG {
		if !isFQDN(name) || secret == "" {
			return nil, fmt.Errorf("dns server: tsig key %q: expected a fully qualified key name and a base64 secret", name)
		}
	}
	tb, err := build(cfg.Topology, nil)
	if err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	s = &Server{
		top:   cfg.Topology,
		cfg:   cfg,
		log:   cfg.Logger,
		rrl:   newRRL(cfg.RRL),
		conns: map[net.Conn]struct{}{},
		done:  make(chan struct{}),
		tcpSt: &workerStats{},
	}
	s.tables.Store(tb)
	defer func() {
		if err != nil {
			s.closeSockets()
		}
	}()
	if err := s.listen(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("dns server: register metrics: %w", err)
		}
	}
	return s, nil
}

// Run is New followed by Serve and Close: it answers until ctx is done. It
// is the one-line way to embed the server in a node:
//
//	go dnsserver.Run(ctx, dnsserver.Config{Listen: node.DNS, Topology: topo,
//		Source: dnsserver.NewEtcdSource(ctx, cli, dnsserver.EtcdOptions{})})
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Serve(ctx)
}

func isFQDN(s string) bool { return len(s) > 1 && s[len(s)-1] == '.' }

// listen opens one SO_REUSEPORT UDP socket per worker and a TCP listener on
// the same port.
func (s *Server) listen() error {
	ap, err := netip.ParseAddrPort(s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dns server: listen address %q: expected ip:port: %w", s.cfg.Listen, err)
	}
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				serr = omitPMTU(int(fd), network)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.closeSockets()
		addr := ap
		first, err := lc.ListenPacket(context.Background(), "udp", addr.String())
		if err != nil {
			return fmt.Errorf("dns server: listen udp %s: %w", addr, err)
		}
		s.udp = append(s.udp, first.(*net.UDPConn))
		addr = first.LocalAddr().(*net.UDPAddr).AddrPort()
		ok := true
		for i := 1; i < s.cfg.Workers; i++ {
			c, err := lc.ListenPacket(context.Background(), "udp", addr.String())
			if err != nil {
				lastErr, ok = err, false
				break
			}
			s.udp = append(s.udp, c.(*net.UDPConn))
		}
		if ok {
			l, err := net.Listen("tcp", addr.String())
			if err != nil {
				lastErr, ok = err, false
			} else {
				s.tcp = l.(*net.TCPListener)
			}
		}
		if ok {
			for _, c := range s.udp {
				if s.cfg.SocketBuffer > 0 {
					_ = c.SetReadBuffer(s.cfg.SocketBuffer)
					_ = c.SetWriteBuffer(s.cfg.SocketBuffer)
				}
			}
			s.addr = addr
			for range s.udp {
				s.stats = append(s.stats, &workerStats{})
			}
			return nil
		}
		if ap.Port() != 0 {
			break
		}
	}
	s.closeSockets()
	return fmt.Errorf("dns server: listen %s: %w", s.cfg.Listen, lastErr)
}

func (s *Server) closeSockets() {
	for _, c := range s.udp {
		c.Close()
	}
	s.udp = nil
	if s.tcp != nil {
		s.tcp.Close()
		s.tcp = nil
	}
}

// Addr is the address the server listens on (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Revision is the routing revision of the tables being served.
func (s *Server) Revision() int64 {
	if tb := s.tables.Load(); tb != nil {
		return tb.revision
	}
	return 0
}

func (s *Server) allStats() []*workerStats {
	return append(append([]*workerStats{}, s.stats...), s.tcpSt)
}

// Serve answers queries until ctx is done or Close is called, then closes
// the sockets and waits for every goroutine it started. It returns nil
// after ctx is done, ErrClosed after Close.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.serving.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return errors.New("dns server: Serve called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.wg.Add(len(s.udp) + 2)
	tcp := s.tcp
	for i, c := range s.udp {
		go func() {
			defer s.wg.Done()
			s.serveUDP(c, s.stats[i])
		}()
	}
	go func() {
		defer s.wg.Done()
		s.serveTCP(ctx, tcp)
	}()
	go func() {
		defer s.wg.Done()
		s.watch(ctx)
	}()
	s.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
	s.wg.Wait()
	select {
	case <-s.done:
		if ctx.Err() != nil {
			return nil
		}
		return ErrClosed
	default:
		return nil
	}
}

// Close stops the server; it is safe to call more than once and from any
// goroutine.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		s.closeSockets()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return nil
}

// watch rebuilds the tables whenever the source delivers a routing table.
func (s *Server) watch(ctx context.Context) {
	if s.cfg.Source == nil {
		return
	}
	ch := s.cfg.Source.Updates()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case rt, ok := <-ch:
			if !ok {
				return
			}
			s.apply(rt)
		}
	}
}

// SetTopology replaces the topology the zone is compiled from (a new
// version applied to the store) and rebuilds the answer tables with the last
// routing; until the rebuild is swapped in, queries get the previous tables.
// On a build error the previous tables stay and the error is returned.
func (s *Server) SetTopology(t *topology.Topology) error {
	if t == nil {
		return errors.New("dns server: no topology")
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	tb, err := build(t, s.last)
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	s.top = t
	s.tables.Store(tb)
	s.builds.Add(1)
	return nil
}

// apply compiles and swaps in tables for rt; on a build error the previous
// tables stay.
func (s *Server) apply(rt *routing.Table) {
	start := time.Now()
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.last = rt
	tb, err := build(s.top, rt)
	if err != nil {
		s.log.Error("dns: build answer tables", "err", err, "revision", rt.Revision)
		return
	}
	s.tables.Store(tb)
	s.builds.Add(1)
	s.log.Debug("dns: answer tables swapped", "revision", rt.Revision, "stale", rt.Stale, "names", len(tb.names), "took", time.Since(start))
}

// serveTCP accepts connections until the listener closes.
func (s *Server) serveTCP(ctx context.Context, l *net.TCPListener) {
	sem := make(chan struct{}, s.cfg.MaxTCPConns)
	var cwg sync.WaitGroup
	defer cwg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // over the connection limit
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-sem
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			defer func() { <-sem }()
			s.serveConn(ctx, c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

type tcpBufs struct {
	in  []byte
	out []byte
	w   worker
}

var tcpPool = sync.Pool{New: func() any {
	return &tcpBufs{in: make([]byte, 65535), out: make([]byte, 2+65535)}
}}

// serveConn answers length-prefixed queries on one TCP connection.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	bufs := tcpPool.Get().(*tcpBufs)
	defer tcpPool.Put(bufs)
	w := &bufs.w
	w.stats = s.tcpSt
	var client netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = ta.AddrPort().Addr()
	}
	var lenb [2]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, lenb[:]); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint16(lenb[:]))
		q := bufs.in[:l]
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		n, slow := w.respond(s.tables.Load(), q, bufs.out[2:], client, true)
		if slow {
			if err := s.slowTCP(ctx, c, q, client); err != nil {
				return
			}
			continue
		}
		if n == 0 {
			return
		}
		binary.BigEndian.PutUint16(bufs.out, uint16(n))
		if _, err := c.Write(bufs.out[:2+n]); err != nil {
			return
		}
	}
}
