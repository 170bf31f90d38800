package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// storeClientFlags are the flags of commands that talk to the store
// directly: endpoints and client TLS.
type storeClientFlags struct {
	endpoints []string
	tls       store.TLSFiles
	timeout   time.Duration
}

// register adds the flags; withDefault gives --endpoints a default (the
// local embedded member), otherwise it is empty (serve: use the topology).
func (f *storeClientFlags) register(cmd *cobra.Command, withDefault bool) {
	var def []string
	usage := "external etcd client endpoints; replaces the topology's store (default: as the topology says)"
	if withDefault {
		def = defaultEndpoints()
		usage = "store (etcd) client endpoints ($FIREBREAK_ENDPOINTS)"
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.endpoints, "endpoints", def, usage)
	fl.StringVar(&f.tls.CAFile, "cacert", "", "CA that signs the store's certificates (PEM)")
	fl.StringVar(&f.tls.CertFile, "cert", "", "client certificate for the store (PEM)")
	fl.StringVar(&f.tls.KeyFile, "key", "", "client key for the store (PEM)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "store connection and request timeout")
}

func defaultEndpoints() []string {
	if e := os.Getenv("FIREBREAK_ENDPOINTS"); e != "" {
		return strings.Split(e, ",")
	}
	return []string{store.DefaultClientURL}
}

func (f *storeClientFlags) config() store.ClientConfig {
	return store.ClientConfig{Endpoints: f.endpoints, TLS: f.tls, DialTimeout: f.timeout, Check: true}
}

func (f *storeClientFlags) dial(ctx context.Context) (*clientv3.Client, error) {
	return store.Dial(ctx, f.config())
}

func newStatusCmd(c *cli) *cobra.Command {
	var f storeClientFlags
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the control plane: nodes, sites, leader, store health, topology version",
		Long: `status reads the store and shows which nodes are alive (their liveness
lease is held), their sites, which node is leader, every etcd member's
health, and the current topology revision.

It talks to the store directly (--endpoints); it exits 1 when the store
cannot be read (no endpoint answers, or no quorum).`,
		Example: `  firebreak status
  firebreak status --endpoints https://10.0.1.5:2379 --cacert certs/ca.pem --cert certs/ops.pem --key certs/ops-key.pem
  firebreak status --format json | jq .leader`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: expected text or json", format)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*f.timeout)
			defer cancel()
			cli, err := f.dial(ctx)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer cli.Close()
			st, err := store.Gather(ctx, cli, f.timeout/2)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printStatus(c, st)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printStatus(c *cli, st *store.Status) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	topo := "(none published)"
	if st.TopologyRev > 0 {
		topo = fmt.Sprintf("rev %d", st.TopologyRev)
	}
	fmt.Fprintf(w, "store:\tquorum ok, revision %d\n", st.Revision)
	fmt.Fprintf(w, "topology:\t%s\n", topo)
	fmt.Fprintf(w, "leader:\t%s\n\n", leader)
	fmt.Fprintf(w, "NODE\tSITE\tAPI\tVERSION\tUP SINCE\n")
	for _, n := range st.Nodes {
		mark := ""
		if n.Name == st.Leader {
			mark = " *"
		}
		fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\n", n.Name, mark, n.Site, dash(n.API), dash(n.Version), n.Started.Format(time.RFC3339))
	}
	if len(st.Members) > 0 {
		fmt.Fprintf(w, "\nMEMBER\tID\tHEALTH\tRAFT\tDB\tPEER\n")
		for _, m := range st.Members {
			health := "ok"
			if !m.Reachable {
				health = "unreachable"
			}
			role := "follower"
			if m.RaftLeader {
				role = "leader"
			}
			if m.Learner {
				role = "learner"
			}
			if !m.Reachable {
				role = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(m.Name), m.ID, health, role, size(m.DBSize), strings.Join(m.PeerURLs, ","))
		}
	}
	for _, e := range st.Errors {
		fmt.Fprintf(w, "warning:\t%s\n", e)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func size(b int64) string {
	switch {
	case b == 0:
		return "-"
	case b < 1<<20:
		return fmt.Sprintf("%d KiB", b>>10)
	default:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
}
