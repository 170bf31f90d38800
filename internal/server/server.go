// Package server assembles a full firebreak node: given the topology, this
// node's entry in it and a few options, Components returns the parts that a
// serving node runs on top of internal/node — the prober, the decider
// (leader only), the datastore failover managers (automatic failover by the
// leader), the authoritative DNS server, the API with the dashboard and
// status page, and the runbook runner's resume-on-leadership. Both
// `firebreak serve` and `firebreak demo` use this one assembly, so the demo
// runs exactly what production runs.
//
//	comps, err := server.Components(top, self, server.Options{TokensFile: "/etc/firebreak/tokens"})
//	if err != nil { ... }
//	n, err := node.Start(ctx, node.Config{Name: self.Name, Topology: top, Member: member, Components: comps})
//
// Every part follows the node's current topology: the prober and the decider
// restart with the new topology when `firebreak apply` publishes one. The DNS
// server keeps the zone it started with and follows routing through the
// store; when the store is unreachable it keeps answering from the last
// routing it had (static stability).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/dnsserver"
	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/runbook"
	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/ui"
)

// Listen addresses used when neither the options nor the topology node
// give one.
const (
	DefaultAPIListen = "127.0.0.1:7480"
	DefaultDNSListen = "127.0.0.1:5353"
)

// Options are the settings of a serving node that the topology does not
// carry. Zero values take the documented defaults.
type Options struct {
	// APIListen is where the API, dashboard and status page listen
	// (default: the topology node's api address, else DefaultAPIListen).
	// "-" turns the API off.
	APIListen string
	// DNSListen is the DNS server's UDP and TCP address (default: the
	// topology node's dns address, else DefaultDNSListen). "-" turns the
	// DNS server off.
	DNSListen string
	// TokensFile is an API tokens file (see package auth); optional, since
	// tokens can also be kept in the store.
	TokensFile string
	// Anonymous is the role of API callers without a token (default
	// auth.None: reads need a token; the status page needs none).
	Anonymous auth.Role
	// NoProbe, NoDecide and NoRunbooks turn those parts off (default: on).
	NoProbe, NoDecide, NoRunbooks bool
	// ProbeDial replaces the prober's dialer (tests, drills).
	ProbeDial probe.DialFunc
	// DecideTick is how often the decider re-evaluates time-based rules
	// without a store event (default 200ms, the decider's).
	DecideTick time.Duration
	// DNSWorkers is the number of UDP readers (default: the number of CPUs).
	DNSWorkers int
	// DNSSocketBuffer is passed to dnsserver.Config.SocketBuffer (default
	// 4 MiB; negative keeps the kernel default).
	DNSSocketBuffer int
	// DNSProbe is how often the DNS server's routing source checks that
	// the store is reachable (default 2s).
	DNSProbe time.Duration
	// NoFailover turns off the datastore failover managers (and so the
	// leader's automatic failover and the readiness in the API).
	NoFailover bool
	// FailoverEngines maps topology engine names to failover drivers
	// (default DefaultFailoverEngines: postgres and redis).
	FailoverEngines map[string]failover.Engine
	// Fencers maps datastore names to the STONITH fencer used when the
	// old primary cannot be reached (failover.ExecFencer,
	// failover.RedfishFencer). Without one, an unreachable primary blocks
	// automatic failover and people use `firebreak failover`.
	Fencers map[string]failover.Fencer
	// FailoverInterval is the readiness round interval (default 1s);
	// FailoverRetry the first wait before retrying a refused automatic
	// failover of one datastore, doubling up to 5 minutes (default 10s).
	FailoverInterval, FailoverRetry time.Duration
	// UITitle is the dashboard's title (default "firebreak").
	UITitle string
	// Logger receives the parts' logs (default: the node's logger).
	Logger *slog.Logger
}

// Components returns the parts of a serving node for self (which may be
// nil when the topology declares no nodes).
func Components(t *topology.Topology, self *topology.Node, opts Options) ([]node.Component, error) {
	if t == nil {
		return nil, errors.New("server: a topology is required")
	}
	if self != nil {
		if opts.APIListen == "" {
			opts.APIListen = self.API
		}
		if opts.DNSListen == "" {
			opts.DNSListen = self.DNS
		}
	}
	if opts.APIListen == "" {
		opts.APIListen = DefaultAPIListen
	}
	if opts.DNSListen == "" {
		opts.DNSListen = DefaultDNSListen
	}
	if opts.TokensFile != "" {
		// Fail at start, not later in the API's goroutine.
		if _, err := auth.LoadTokens(opts.TokensFile); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var out []node.Component
	if !opts.NoProbe {
		out = append(out, &Prober{Dial: opts.ProbeDial, Registerer: reg, Logger: opts.Logger})
	}
	if !opts.NoDecide {
		out = append(out, &Decider{Tick: opts.DecideTick, Logger: opts.Logger})
	}
	var fo *Failover
	if !opts.NoFailover {
		fo = &Failover{Engines: opts.FailoverEngines, Fencers: opts.Fencers, Interval: opts.FailoverInterval,
			Retry: opts.FailoverRetry, Logger: opts.Logger}
		out = append(out, fo)
	}
	if opts.DNSListen != "-" {
		out = append(out, &DNS{Listen: opts.DNSListen, Workers: opts.DNSWorkers, SocketBuffer: opts.DNSSocketBuffer,
			Probe: opts.DNSProbe, Registerer: reg, Logger: opts.Logger})
	}
	if opts.APIListen != "-" {
		logger := opts.Logger
		title := opts.UITitle
		var readiness func() []view.DatastoreReadiness
		if fo != nil {
			readiness = fo.Readiness
		}
		out = append(out, &api.Component{
			Addr:       opts.APIListen,
			Config:     api.Config{Registry: reg, Readiness: readiness},
			TokensFile: opts.TokensFile,
			Anonymous:  opts.Anonymous,
			Runs: func(cli *clientv3.Client) http.Handler {
				return runbook.Handler(runbook.NewEtcdJournal(cli), nil, api.RunsPrefix)
			},
			UI: func(st view.State, a *auth.Authenticator) (http.Handler, error) {
				l := logger
				if l == nil {
					l = slog.Default()
				}
				return ui.New(st, ui.Options{Auth: a, Title: title, Readiness: readiness}, l)
			},
		})
	}
	if !opts.NoRunbooks {
		out = append(out, &Runbooks{Logger: opts.Logger})
	}
	return out, nil
}

func logger(l *slog.Logger, n *node.Node) *slog.Logger {
	if l != nil {
		return l
	}
	return n.Logger()
}

// followTopology runs run with the node's current topology and restarts it
// (cancelling the previous run) each time the topology changes, until ctx
// is done or run returns by itself.
func followTopology(ctx context.Context, n *node.Node, run func(ctx context.Context, t *topology.Topology) error) error {
	for {
		changed := n.TopologyChanged()
		t, _ := n.Topology()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run(rctx, t) }()
		select {
		case <-changed:
			cancel()
			<-done
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.Logger().Info("topology changed: restarting", "node", n.Name())
		case err := <-done:
			cancel()
			return err
		}
	}
}

// Prober is the node.Component that checks the endpoints assigned to this
// node and writes its observations under the node's lease (one probe.Prober
// per lease generation and topology).
type Prober struct {
	// Dial replaces the checks' dialer (default net.Dialer).
	Dial probe.DialFunc
	// Registerer receives the prober's metrics (optional).
	Registerer prometheus.Registerer
	// Logger defaults to the node's.
	Logger *slog.Logger
}

// Name implements node.Component.
func (*Prober) Name() string { return "probe" }

// Run implements node.Component.
func (p *Prober) Run(ctx context.Context, n *node.Node) error {
	log := logger(p.Logger, n)
	err := n.WithLease(ctx, func(ctx context.Context, lease clientv3.LeaseID) error {
		return followTopology(ctx, n, func(ctx context.Context, t *topology.Topology) error {
			pr, err := probe.NewProber(probe.Config{Node: n.Name(), Topology: t, Client: n.Client(), Lease: lease, Dial: p.Dial,
				Registerer: p.Registerer, Logger: log})
			if err != nil {
				return err
			}
			return quiet(ctx, pr.Run(ctx))
		})
	})
	return quiet(ctx, err)
}

// Decider is the node.Component that, while this node leads, turns
// observations into verdicts and routing (decide.Decider, guarded by the
// node's leadership).
type Decider struct {
	// Tick is the decider's tick (default the decider's 200ms).
	Tick time.Duration
	// Logger defaults to the node's.
	Logger *slog.Logger
}

// Name implements node.Component.
func (*Decider) Name() string { return "decide" }

// Run implements node.Component.
func (d *Decider) Run(ctx context.Context, n *node.Node) error {
	log := logger(d.Logger, n)
	err := n.WhileLeader(ctx, func(ctx context.Context) error {
		log.Info("leader: deciding", "node", n.Name())
		return followTopology(ctx, n, func(ctx context.Context, t *topology.Topology) error {
			dec, err := decide.NewDecider(decide.DeciderConfig{Client: n.Client(), Engine: decide.NewEngine(t, 0),
				Guard: n.LeaderGuard, Tick: d.Tick, Logger: log})
			if err != nil {
				return err
			}
			return quiet(ctx, dec.Run(ctx))
		})
	})
	return quiet(ctx, err)
}

// DNS is the node.Component that serves the zone from the routing in the
// store (dnsserver with an EtcdSource on the node's client).
type DNS struct {
	// Listen is the UDP and TCP address (required).
	Listen string
	// Workers, SocketBuffer: see dnsserver.Config.
	Workers, SocketBuffer int
	// Probe: see dnsserver.EtcdOptions (default 2s).
	Probe time.Duration
	// Registerer receives the server's metrics (optional).
	Registerer prometheus.Registerer
	// Logger defaults to the node's.
	Logger *slog.Logger
}

// Name implements node.Component.
func (*DNS) Name() string { return "dns" }

// Run implements node.Component.
func (d *DNS) Run(ctx context.Context, n *node.Node) error {
	log := logger(d.Logger, n)
	t, _ := n.Topology()
	src := dnsserver.NewEtcdSource(ctx, n.Client(), dnsserver.EtcdOptions{Probe: d.Probe, Logger: log})
	defer src.Close()
	srv, err := dnsserver.New(dnsserver.Config{Listen: d.Listen, Topology: t, Source: src, Workers: d.Workers,
		SocketBuffer: d.SocketBuffer, Registerer: d.Registerer, Logger: log})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	defer srv.Close()
	log.Info("dns serving", "node", n.Name(), "addr", srv.Addr().String(), "zone", t.DNS.Zone)
	// A topology applied to the store recompiles the zone in place: the
	// sockets stay open and queries keep their answers until the swap.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for {
			changed := n.TopologyChanged()
			select {
			case <-wctx.Done():
				return
			case <-changed:
			}
			if nt, rev := n.Topology(); nt != t {
				if err := srv.SetTopology(nt); err != nil {
					log.Error("dns: new topology not served; keeping the previous zone", "rev", rev, "err", err)
					continue
				}
				t = nt
				log.Info("dns: zone recompiled for a new topology", "rev", rev, "zone", nt.DNS.Zone)
			}
		}
	}()
	err = srv.Serve(ctx)
	if errors.Is(err, dnsserver.ErrClosed) {
		err = nil
	}
	return quiet(ctx, err)
}

// Runbooks is the node.Component that, when this node becomes leader,
// resumes every unfinished runbook run from the journal in the store (a run
// started on a node that died continues here).
type Runbooks struct {
	// Logger defaults to the node's.
	Logger *slog.Logger
}

// Name implements node.Component.
func (*Runbooks) Name() string { return "runbooks" }

// Run implements node.Component.
func (r *Runbooks) Run(ctx context.Context, n *node.Node) error {
	log := logger(r.Logger, n)
	err := n.WhileLeader(ctx, func(ctx context.Context) error {
		rn := &runbook.Runner{Journal: runbook.NewEtcdJournal(n.Client()), Drivers: runbook.BuildDrivers,
			Owner: n.Name(), Logger: log}
		return quiet(ctx, rn.ResumeUnfinished(ctx))
	})
	return quiet(ctx, err)
}

// quiet turns the error of a part stopped by ctx into nil.
func quiet(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}

var (
	_ node.Component = (*Prober)(nil)
	_ node.Component = (*Decider)(nil)
	_ node.Component = (*DNS)(nil)
	_ node.Component = (*Runbooks)(nil)
)
