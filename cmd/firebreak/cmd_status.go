package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/api/view"
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
	var api client.Flags
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the control plane: nodes, sites, leader, store health, topology, services, overrides",
		Long: `status asks a node's HTTP API for its state and shows: which nodes are
alive (and their sites) and which one leads; the store's quorum and every
etcd member's health; the topology version; the sites with their health,
drains and evacuations; each service's state and where it is routed;
the overrides in force; and each datastore's failover readiness when the
node reports it. When the node that answers has lost its store
quorum, a STALE banner says since when its state is the last it read.

Where to connect: --server (or $FIREBREAK_SERVER, or server: in
~/.config/firebreak/client.yaml; default http://127.0.0.1:7480), with a
viewer token from --token-file / --token (or $FIREBREAK_TOKEN_FILE /
$FIREBREAK_TOKEN, or tokenFile: in the config file). Any node answers.

Break glass: when no API node answers, --endpoints reads the store (etcd)
directly and shows nodes, leader, members and topology revision only.

It exits 1 when the node (or, with --endpoints, the store) cannot be read.`,
		Example: `  firebreak status
  firebreak status --server http://10.0.1.5:7480 --token-file ~/.config/firebreak/token
  firebreak status --format json | jq .leader
  # break glass (no API node answers):
  firebreak status --endpoints https://10.0.1.5:2379 --cacert certs/ca.pem --cert certs/ops.pem --key certs/ops-key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: expected text or json", format)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*f.timeout)
			defer cancel()
			if len(f.endpoints) == 0 {
				ac, err := api.Client()
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				snap, err := ac.Snapshot(ctx)
				if err != nil {
					return apiError(err)
				}
				// Datastore readiness, when the node offers it (older
				// nodes answer 404).
				ds, err := ac.Datastores(ctx)
				if err != nil && client.StatusCode(err) != http.StatusNotFound {
					fmt.Fprintf(c.stderr, "warning: datastore readiness: %v\n", err)
				}
				if format == "json" {
					enc := json.NewEncoder(c.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(struct {
						*view.Snapshot
						Datastores []view.DatastoreReadiness `json:"datastores,omitempty"`
					}{snap, ds})
				}
				return printSnapshot(c, snap, ds)
			}
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
	api.AddFlags(cmd.Flags())
	f.register(cmd, false)
	cmd.Flags().Lookup("endpoints").Usage = "break glass: read the store (etcd) at these client endpoints directly instead of the API"
	cmd.Flags().Lookup("timeout").Usage = "bound of the API calls (twice this), or with --endpoints of the store connection and each request"
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (the API's snapshot, or with --endpoints the store's status)")
	return cmd
}

// printSnapshot prints a node's snapshot for people.
func printSnapshot(c *cli, s *view.Snapshot, ds []view.DatastoreReadiness) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if s.Stale {
		fmt.Fprintf(w, "STALE since %s (%s ago): node %s has lost its store quorum; this is the last state it read%s\n\n",
			s.StaleSince.UTC().Format(time.RFC3339), time.Since(s.StaleSince).Round(time.Second), s.Node, prefixed(": ", s.StaleReason))
	}
	quorum := "quorum ok"
	if !s.Store.Quorum {
		quorum = "NO QUORUM"
	}
	topo := "(none published)"
	if s.Topology.Revision > 0 {
		topo = fmt.Sprintf("%s rev %d", dash(s.Topology.Name), s.Topology.Revision)
	}
	fmt.Fprintf(w, "answered by:\t%s\n", s.Node)
	fmt.Fprintf(w, "store:\t%s, revision %d%s\n", quorum, s.Revision, prefixed(", error: ", s.Store.Error))
	fmt.Fprintf(w, "topology:\t%s\n", topo)
	fmt.Fprintf(w, "leader:\t%s\n", dash(s.Leader))
	for _, a := range s.Alarms {
		fmt.Fprintf(w, "ALARM:\t%s %s: %s\n", a.Kind, a.Subject, a.Message)
	}

	fmt.Fprintf(w, "\nNODE\tSITE\tALIVE\tAPI\tVERSION\tUP SINCE\n")
	for _, n := range s.Nodes {
		mark, alive, since := "", "no", "-"
		if n.Leader {
			mark = " *"
		}
		if n.Alive {
			alive = "yes"
		}
		if !n.Started.IsZero() {
			since = n.Started.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, mark, n.Site, alive, dash(n.API), dash(n.Version), since)
	}
	if len(s.Store.Members) > 0 {
		fmt.Fprintf(w, "\nMEMBER\tID\tHEALTH\tRAFT\tDB\n")
		for _, m := range s.Store.Members {
			health, role := "ok", "follower"
			if m.RaftLeader {
				role = "leader"
			}
			if !m.Reachable {
				health, role = "unreachable", "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", dash(m.Name), m.ID, health, role, size(m.DBSize))
		}
	}
	if len(s.Sites) > 0 {
		fmt.Fprintf(w, "\nSITE\tROLE\tSTATE\tENDPOINTS UP\tNODES ALIVE\tNOTE\n")
		for _, st := range s.Sites {
			var note []string
			if st.Evacuated {
				note = append(note, "evacuated by automation")
			}
			if d := st.Drained; d != nil {
				note = append(note, fmt.Sprintf("drained by %s until %s: %s", d.Who, d.Expires.UTC().Format(time.RFC3339), d.Why))
			}
			if st.Reason != "" && st.State != view.StateUp {
				note = append(note, st.Reason)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d/%d\t%s\n", st.Name, st.Role, st.State, st.EndpointsUp, st.Endpoints,
				st.NodesAlive, len(st.Nodes), dash(strings.Join(note, "; ")))
		}
	}
	if len(s.Services) > 0 {
		fmt.Fprintf(w, "\nSERVICE\tSTATE\tROUTED TO\tREVISION\tNOTE\n")
		for _, sv := range s.Services {
			routed, rev := "(no routing yet)", "-"
			var note []string
			if sv.StateReason != "" {
				note = append(note, sv.StateReason)
			}
			if r := sv.Route; r != nil {
				var ts []string
				for _, t := range r.Targets {
					ts = append(ts, t.Site+"/"+t.Address)
				}
				routed, rev = dash(strings.Join(ts, " ")), fmt.Sprint(r.Revision)
				if r.FailOpen {
					note = append(note, "FAIL-OPEN")
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", sv.Name, sv.State, routed, rev, dash(strings.Join(note, "; ")))
		}
	}
	if len(ds) > 0 {
		fmt.Fprintf(w, "\nDATASTORE\tENGINE\tMODE\tPRIMARY\tLAG / RPO\tREADY\tSUMMARY\n")
		for _, d := range ds {
			lag := "unknown"
			if d.LagKnown {
				lag = d.LagNow
			}
			ready := "no"
			switch {
			case d.Mode == view.FailoverManual:
				ready = "manual"
			case d.OK:
				ready = "yes"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s / %s\t%s\t%s\n", d.Datastore, d.Engine, d.Mode, dash(d.PrimarySite), lag, dash(d.RPO), ready, dash(d.Summary))
		}
	}
	now := time.Now()
	active := 0
	for _, o := range s.Overrides {
		if !o.Active {
			continue
		}
		if active == 0 {
			fmt.Fprintf(w, "\nOVERRIDE\tKIND\tTARGET\tWHO\tEXPIRES\tWHY\n")
		}
		active++
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\tin %s\t%s\n", o.ID, o.Kind, orAll(o.Target), o.Who, o.Expires.Sub(now).Round(time.Second), o.Why)
	}
	if active == 0 {
		fmt.Fprintf(w, "\noverrides:\tnone in force\n")
	}
	return w.Flush()
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
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
