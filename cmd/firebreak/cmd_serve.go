package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/server"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

// serveComponents lists what adds parts to a serving node beyond
// internal/server's assembly (prober, decider, DNS server, API, runner),
// which serve always runs. Each function gets the cli, the topology the
// node starts with and this node's entry in it (nil when the topology
// declares no nodes) and returns the parts to run; add yours here.
var serveComponents []func(c *cli, t *topology.Topology, self *topology.Node) ([]node.Component, error)

type serveFlags struct {
	config          string
	node            string
	dataDir         string
	clientURL       string
	peerURL         string
	clusterState    string
	token           string
	peerTLS         store.TLSFiles
	clientTLS       store.TLSFiles
	store           storeClientFlags
	leaseTTL        time.Duration
	leaveOnShutdown bool
	shutdownTimeout time.Duration
	tickMs          uint
	electionMs      uint
	adopt           bool
	parts           server.Options
	anonymous       string
	fenceExec       []string
}

func newServeCmd(c *cli) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve -c TOPOLOGY",
		Short: "Run a firebreak node: the store, liveness, leader election and every part",
		Long: `serve runs one firebreak node (one per site).

Where the state lives is decided by the topology:
  - no node declares a peer URL: a single-member etcd is embedded in
    --data-dir and the node is useful at once (a laptop, a demo, one site);
  - nodes declare peer URLs: each node's embedded member joins one etcd
    cluster with the others (initial cluster = every node with a peer URL);
  - store.endpoints is set (or --endpoints): the node is only a client of an
    existing external etcd cluster.

The topology file is published to the store when the store holds none;
afterwards the store's version is authoritative: change it with
"firebreak apply FILE" and every node picks it up without restart.

On top of the store the node runs every part (internal/server): the
prober, the decider and the runbook runner (both only while leader), the
authoritative DNS server (--dns-listen, default the node's dns address),
the API with the dashboard and status page (--api-listen, default the
node's api address), and the datastore failover managers: every node keeps
each postgres/redis datastore's readiness and lag history, and the leader
promotes a replica when the primary's site is down by verdict, the old
primary is fenced (directly, or by its --fence-exec hook) and the lag is
within the RPO (docs/failover.md).

The node publishes its liveness under a lease (--lease-ttl, default 3s): a
dead node's keys vanish with it. One node is elected leader for the
leader-only parts. When the node loses the store's quorum it keeps serving
its last good state, marked stale, and makes no automatic decision.

SIGTERM or Ctrl-C shuts down gracefully: parts stop, leadership is resigned,
the lease revoked; with --leave-on-shutdown the member also leaves the etcd
cluster (decommissioning a site).

TLS: give the member's listeners certificates with --peer-* and --client-*
(or store.caFile/certFile/keyFile in the topology for both) and use https://
URLs; "firebreak certs" makes a CA and node certificates. See
docs/operations.md.`,
		Example: `  # one node, embedded single-member store under ~/.local/state/firebreak
  firebreak serve -c examples/fixed.yaml

  # one node of a 3-site cluster (nodes declare peer/client URLs)
  firebreak serve -c prod.yaml --node fb-pangyo --data-dir /var/lib/firebreak

  # TLS between members and for clients
  firebreak serve -c prod.yaml --node fb-pangyo \
    --peer-cert certs/fb-pangyo.pem --peer-key certs/fb-pangyo-key.pem --peer-ca certs/ca.pem \
    --client-cert certs/fb-pangyo.pem --client-key certs/fb-pangyo-key.pem --client-ca certs/ca.pem

  # a client of an existing etcd cluster
  firebreak serve -c prod.yaml --endpoints https://etcd1:2379,https://etcd2:2379 --cacert ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), c, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "topology file (required)")
	fl.StringVar(&f.node, "node", "", "which topology node this is (default: the only node, or the one named like the host)")
	fl.StringVar(&f.dataDir, "data-dir", "", "embedded store data dir, created 0700 (default $XDG_STATE_HOME/firebreak/NODE or ~/.local/state/firebreak/NODE)")
	fl.StringVar(&f.clientURL, "client-url", "", "embedded member client URL (default: the node's client URL, else "+store.DefaultClientURL+")")
	fl.StringVar(&f.peerURL, "peer-url", "", "embedded member peer URL (default: the node's peer URL, else "+store.DefaultPeerURL+")")
	fl.StringVar(&f.clusterState, "initial-cluster-state", "new", "new to bootstrap the cluster, existing to join a running one after 'etcdctl member add'")
	fl.StringVar(&f.token, "cluster-token", store.DefaultToken, "initial cluster token; distinct clusters need distinct tokens")
	fl.StringVar(&f.peerTLS.CertFile, "peer-cert", "", "member peer TLS certificate (PEM)")
	fl.StringVar(&f.peerTLS.KeyFile, "peer-key", "", "member peer TLS key (PEM)")
	fl.StringVar(&f.peerTLS.CAFile, "peer-ca", "", "CA that signs peers' certificates (peers must present one)")
	fl.StringVar(&f.clientTLS.CertFile, "client-cert", "", "member client-URL TLS certificate (PEM); also the node's own client certificate")
	fl.StringVar(&f.clientTLS.KeyFile, "client-key", "", "member client-URL TLS key (PEM)")
	fl.StringVar(&f.clientTLS.CAFile, "client-ca", "", "CA that signs clients' certificates (clients must present one)")
	f.store.register(cmd, false)
	fl.DurationVar(&f.leaseTTL, "lease-ttl", node.DefaultLeaseTTL, "liveness and leader-election lease TTL (whole seconds)")
	fl.BoolVar(&f.leaveOnShutdown, "leave-on-shutdown", false, "remove this node's member from the etcd cluster on shutdown (decommission)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	fl.StringVar(&f.parts.APIListen, "api-listen", "", `API, dashboard and status page address (default: the node's api address; "-" for none)`)
	fl.StringVar(&f.parts.DNSListen, "dns-listen", "", `authoritative DNS address, UDP and TCP (default: the node's dns address; "-" for none)`)
	fl.StringVar(&f.parts.TokensFile, "tokens-file", "", "API tokens file (see docs/api.md); tokens may also live in the store")
	fl.StringVar(&f.anonymous, "anonymous", "none", "role of API callers without a token: none, viewer, operator or admin (the status page needs none)")
	fl.BoolVar(&f.parts.NoProbe, "no-probe", false, "do not run the prober on this node")
	fl.BoolVar(&f.parts.NoDecide, "no-decide", false, "never run the decider here, even as leader")
	fl.BoolVar(&f.parts.NoRunbooks, "no-runbooks", false, "never run runbooks here, even as leader")
	fl.BoolVar(&f.parts.NoFailover, "no-failover", false, "do not run the datastore failover managers here (no readiness, no automatic failover)")
	fl.StringArrayVar(&f.fenceExec, "fence-exec", nil, "DATASTORE=COMMAND: STONITH hook that fences an unreachable old primary of DATASTORE before automatic failover (repeatable; see docs/failover.md)")
	fl.BoolVar(&f.adopt, "adopt-data-dir", false, "accept a data dir restored with 'etcdutl snapshot restore' (it has no firebreak marker yet)")
	fl.UintVar(&f.tickMs, "heartbeat-ms", store.DefaultTickMs, "etcd raft heartbeat interval in ms")
	fl.UintVar(&f.electionMs, "election-ms", store.DefaultElectionMs, "etcd raft election timeout in ms")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// defaultDataDir is the per-user state dir for node's embedded store.
func defaultDataDir(nodeName string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --data-dir and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "firebreak", nodeName), nil
}

// printTopologyErrors prints a load error as validate does.
func printTopologyErrors(c *cli, file string, err error) error {
	if l, ok := yamlnode.AsList(err); ok {
		for _, e := range l {
			fmt.Fprintln(c.stderr, e.Error())
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d error(s)", file, len(l))}
	}
	return &exitError{code: 1, err: err}
}

func runServe(ctx context.Context, c *cli, f *serveFlags) error {
	log := c.logger()
	src, err := os.ReadFile(f.config)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("read topology: %w", err)}
	}
	top, err := topology.Parse(f.config, src)
	if err != nil {
		return printTopologyErrors(c, f.config, err)
	}
	host, _ := os.Hostname()
	self, err := node.PickNode(top, f.node, host)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	name := f.node
	if self != nil {
		name = self.Name
	}
	if name == "" {
		name = host
	}
	if f.dataDir == "" {
		if f.dataDir, err = defaultDataDir(name); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	etcdLog := store.DefaultEtcdLogLevel
	if c.logLevel == "debug" {
		etcdLog = "debug"
	}
	member, ext, err := node.StoreFor(top, self, name, node.StoreOptions{
		DataDir: f.dataDir, Token: f.token, ClusterState: f.clusterState,
		ClientURL: f.clientURL, PeerURL: f.peerURL, PeerTLS: f.peerTLS, ClientTLS: f.clientTLS,
		TickMs: f.tickMs, ElectionMs: f.electionMs, EtcdLogLevel: etcdLog, AdoptDataDir: f.adopt,
	})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(f.store.endpoints) > 0 {
		member, ext = nil, f.store.config()
	}
	cfg := node.Config{
		Name: name, Topology: top, TopologySource: src, Member: member, External: ext,
		LeaseTTL: f.leaseTTL, LeaveOnShutdown: f.leaveOnShutdown, Version: version, Logger: log,
	}
	if f.anonymous != "none" {
		if f.parts.Anonymous, err = auth.ParseRole(f.anonymous); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--anonymous: %w", err)}
		}
	}
	if f.parts.Fencers, err = parseFenceExec(top, f.fenceExec); err != nil {
		return &exitError{code: 2, err: err}
	}
	f.parts.Logger = log
	parts, err := server.Components(top, self, f.parts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg.Components = parts
	for _, mk := range serveComponents {
		comps, err := mk(c, top, self)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		cfg.Components = append(cfg.Components, comps...)
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	where := "external store " + fmt.Sprint(ext.Endpoints)
	if m := n.Member(); m != nil {
		where = fmt.Sprintf("embedded store in %s, client %s, peer %s", f.dataDir, m.ClientURL(), m.PeerURL())
	}
	log.Info("serving", "node", name, "site", n.Site(), "store", where)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-n.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return &exitError{code: 1, err: fmt.Errorf("shutdown: %w", err)}
	}
	return nil
}

// parseFenceExec turns --fence-exec DATASTORE=COMMAND values into fencers.
func parseFenceExec(top *topology.Topology, vals []string) (map[string]failover.Fencer, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string]failover.Fencer{}
	for _, v := range vals {
		name, command, ok := strings.Cut(v, "=")
		argv := strings.Fields(command)
		if !ok || name == "" || len(argv) == 0 {
			return nil, fmt.Errorf("--fence-exec %q: expected DATASTORE=COMMAND, e.g. accounts='/usr/local/bin/pdu-off'", v)
		}
		if top.Datastore(name) == nil {
			return nil, fmt.Errorf("--fence-exec %q: no datastore %q in the topology", v, name)
		}
		out[name] = failover.ExecFencer{Command: argv}
	}
	return out, nil
}
