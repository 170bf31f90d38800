package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// Backend is a tiny HTTP server playing one service endpoint: GET /healthz
// answers "ok", anything else "hello from SERVICE in SITE".
type Backend struct {
	Endpoint *topology.Endpoint
	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
}

// Backends are every endpoint of a topology, served on loopback.
type Backends struct {
	mu   sync.Mutex
	all  []*Backend
	log  *slog.Logger
	stop sync.Once
}

// StartBackends listens on every endpoint's address:port. The addresses must
// be loopback (127.0.0.0/8): the demo never binds anything else.
func StartBackends(top *topology.Topology, log *slog.Logger) (_ *Backends, err error) {
	b := &Backends{log: log}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	for _, ep := range top.Endpoints() {
		if err := b.start(ep); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// StartSite starts the backends of site's endpoints again (after KillSite).
func (b *Backends) StartSite(top *topology.Topology, site string) error {
	for _, ep := range top.Endpoints() {
		if ep.Site != site {
			continue
		}
		if err := b.start(ep); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backends) start(ep *topology.Endpoint) error {
	ip := net.ParseIP(ep.Address)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("demo backend %s: address %q is not a loopback address", ep.ID(), ep.Address)
	}
	addr := net.JoinHostPort(ep.Address, fmt.Sprint(ep.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo backend %s: %w", ep.ID(), err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s in %s\n", ep.Service, ep.Site)
	})
	be := &Backend{
		Endpoint: ep,
		ln:       ln,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second},
		done:     make(chan struct{}),
	}
	log := b.log
	go func() {
		defer close(be.done)
		if err := be.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("demo backend stopped", "endpoint", ep.ID(), "err", err)
		}
	}()
	b.mu.Lock()
	b.all = append(b.all, be)
	b.mu.Unlock()
	return nil
}

// KillSite closes every backend in site at once (hard close: connections
// are cut, not drained) and returns how many died.
func (b *Backends) KillSite(site string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	keep := b.all[:0]
	for _, be := range b.all {
		if be.Endpoint.Site == site {
			_ = be.srv.Close()
			<-be.done
			n++
			continue
		}
		keep = append(keep, be)
	}
	b.all = keep
	return n
}

// Close stops every backend; safe to call more than once.
func (b *Backends) Close() {
	b.stop.Do(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, be := range b.all {
			_ = be.srv.Shutdown(ctx)
			<-be.done
		}
		b.all = nil
	})
}
