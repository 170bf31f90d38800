package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/dnsserver"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

type dnsFlags struct {
	topology   string
	routing    string
	endpoints  []string
	listen     string
	workers    int
	batch      int
	sockBuf    int
	metrics    string
	reload     time.Duration
	rrlRate    int
	rrlSlip    int
	axfrAllow  []string
	tsig       []string
	dialTimout time.Duration
	cpuProfile string
}

func newDNSCmd(c *cli) *cobra.Command {
	f := &dnsFlags{}
	cmd := &cobra.Command{
		Use:   "dns --topology FILE (--routing FILE | --endpoints URLS)",
		Short: "Serve the topology's DNS zone from routing (standalone authoritative server)",
		Long: `dns runs firebreak's authoritative DNS server on its own: it answers the
topology's zone (dns.zone) on UDP and TCP from a routing source.

Routing comes from one of:
  --routing FILE     a JSON file, either a routing table
                     {"revision": N, "routes": {"web": {...}}} or an object
                     mapping service names to routes; re-read when it changes.
  --endpoints URLS   the store (etcd): the routing keys are watched, and when
                     the store is unreachable the last answers keep being
                     served while TXT records say "stale since T". The
                     topology's store TLS files (store.caFile, certFile,
                     keyFile), when set, secure the connection.
With neither, every declared endpoint is answered (as if all were healthy).

Names answered: the apex (SOA, NS <node>.ns.<zone> with glue, TXT), each
service and datastore (A, AAAA, SRV, TXT), aliases (CNAME) and endpoint
hosts (<site>-<n>.<service>). Policies: active-active and weighted rotate
targets by weight, failover answers the first site, nearest maps the client
(or its EDNS client subnet) through the sites' subnets. See docs/dns.md.

Zone transfers are off unless --axfr-allow (or the topology's
dns.secondaries) names the secondaries; --tsig then requires signed
transfers. Response-rate limiting is off unless --rrl-rate is set.`,
		Example: `  # serve a routing file on a high port, metrics on :9153
  firebreak dns --topology examples/fixed.yaml --routing routing.json \
      --listen 127.0.0.1:5353 --metrics 127.0.0.1:9153
  dig @127.0.0.1 -p 5353 login.svc.kakao.example. A

  # follow the store, with RRL and signed transfers to one secondary
  firebreak dns --topology prod.yaml --endpoints 10.0.1.5:2379,10.0.2.5:2379 \
      --listen 0.0.0.0:53 --rrl-rate 20 --axfr-allow 10.9.0.53/32 \
      --tsig xfr.:c2VjcmV0LXNlY3JldC1zZWNyZXQ=`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDNS(cmd.Context(), c, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topology, "topology", "", "topology file (required)")
	fl.StringVar(&f.routing, "routing", "", "routing JSON file to serve (reloaded when it changes)")
	fl.StringSliceVar(&f.endpoints, "endpoints", nil, "store (etcd) client endpoints to watch routing from")
	fl.DurationVar(&f.dialTimout, "store-timeout", 5*time.Second, "store dial and probe timeout")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:53", "UDP and TCP address (ip:port)")
	fl.IntVar(&f.workers, "workers", 0, "UDP readers, one SO_REUSEPORT socket each (0: one per CPU)")
	fl.IntVar(&f.batch, "batch", 0, "datagrams per recvmmsg/sendmmsg call (0: 32)")
	fl.IntVar(&f.sockBuf, "socket-buffer", 0, "UDP socket receive/send buffer in bytes (0: 4 MiB; negative: kernel default)")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (/metrics); empty: off")
	fl.DurationVar(&f.reload, "reload", time.Second, "how often the routing file is checked for changes")
	fl.IntVar(&f.rrlRate, "rrl-rate", 0, "response-rate limit: UDP responses per second per client prefix (0: off)")
	fl.IntVar(&f.rrlSlip, "rrl-slip", 2, "send every Nth limited response truncated instead of dropping it (negative: drop all)")
	fl.StringSliceVar(&f.axfrAllow, "axfr-allow", nil, "networks (CIDR or IP) allowed to transfer the zone; adds to dns.secondaries")
	fl.StringSliceVar(&f.tsig, "tsig", nil, "TSIG key for transfers as name:base64secret (HMAC-SHA256); repeatable")
	fl.StringVar(&f.cpuProfile, "cpu-profile", "", "write a Go CPU profile to this file until exit (for benchmarks)")
	_ = cmd.MarkFlagRequired("topology")
	return cmd
}

func runDNS(ctx context.Context, c *cli, f *dnsFlags) error {
	log := c.logger()
	if f.routing != "" && len(f.endpoints) > 0 {
		return &exitError{code: 2, err: errors.New("dns: --routing and --endpoints are exclusive; give one")}
	}
	topo, err := topology.Load(f.topology)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if topo.DNS.Zone == "" {
		return &exitError{code: 1, err: fmt.Errorf("dns: %s has no dns.zone to serve", f.topology)}
	}
	allow, err := parseNets(append(append([]string{}, topo.DNS.Secondaries...), f.axfrAllow...))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	keys := map[string]string{}
	for _, k := range f.tsig {
		name, secret, ok := strings.Cut(k, ":")
		if !ok || name == "" || secret == "" {
			return &exitError{code: 2, err: fmt.Errorf("dns: --tsig %q: expected name:base64secret", k)}
		}
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		keys[name] = secret
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("dns: cpu profile: %w", err)}
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("dns: cpu profile: %w", err)}
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var src dnsserver.Source
	switch {
	case f.routing != "":
		fs, err := dnsserver.NewFileSource(ctx, f.routing, f.reload, log)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		defer fs.Close()
		src = fs
	case len(f.endpoints) > 0:
		// The topology's store TLS files, when declared, secure the client.
		tlsCfg, err := store.TLSFiles{CAFile: topo.Store.CAFile, CertFile: topo.Store.CertFile, KeyFile: topo.Store.KeyFile}.ClientConfig()
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("dns: %w", err)}
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: f.endpoints, DialTimeout: f.dialTimout, TLS: tlsCfg, Logger: zap.NewNop()})
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("dns: connect to store %s: %w", strings.Join(f.endpoints, ","), err)}
		}
		defer cli.Close()
		es := dnsserver.NewEtcdSource(ctx, cli, dnsserver.EtcdOptions{Probe: f.dialTimout, Logger: log})
		defer es.Close()
		src = es
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := dnsserver.New(dnsserver.Config{
		Listen:       f.listen,
		Topology:     topo,
		Source:       src,
		Workers:      f.workers,
		Batch:        f.batch,
		SocketBuffer: f.sockBuf,
		RRL:          dnsserver.RRLConfig{ResponsesPerSecond: f.rrlRate, Slip: f.rrlSlip},
		Transfer:     dnsserver.TransferConfig{Allow: allow, TSIG: keys},
		Registerer:   reg,
		Logger:       log,
	})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer srv.Close()
	if f.metrics != "" {
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("dns: metrics listener: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
	}
	log.Info("dns: serving", "zone", topo.DNS.Zone, "addr", srv.Addr().String(), "transfers", len(allow) > 0, "rrl", f.rrlRate > 0)
	fmt.Fprintf(c.stdout, "serving %s on %s (udp+tcp)\n", topo.DNS.Zone, srv.Addr())
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, dnsserver.ErrClosed) {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// parseNets reads CIDRs or bare IPs.
func parseNets(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		host := s
		if ap, err := netip.ParseAddrPort(s); err == nil {
			host = ap.Addr().String()
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("dns: transfer peer %q: expected an IP address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
