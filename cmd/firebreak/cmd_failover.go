package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/pg"
	"github.com/firebreak/firebreak/internal/failover/redisfo"
	"github.com/firebreak/firebreak/internal/topology"
)

type failoverFlags struct {
	topology       string
	endpoints      []string
	to             string
	mode           string
	acceptLoss     bool
	assumeSiteDown bool
	assumeFenced   bool
	reason         string
	who            string
	check          bool
	jsonOut        bool
	fenceExec      string
	fenceRedfish   string
	redfishUser    string
	resyncExec     string
	pgUser         string
	pgDatabase     string
	pgSSLMode      string
	timeout        time.Duration
}

func newFailoverCmd(c *cli) *cobra.Command {
	var f failoverFlags
	cmd := &cobra.Command{
		Use:   "failover DATASTORE [--to SITE] [--accept-data-loss --reason TEXT]",
		Short: "Make a replica of a datastore the primary, safely (switchover or failover)",
		Long: `failover moves a datastore's primary role to a replica and points clients at
it (the datastore's routing entry, and so its DNS name).

When the primary is healthy it is a planned switchover that loses nothing:
writes stop on the primary, the replica catches up to the primary's last
position, the epoch in the store is advanced with a compare-and-swap, the
replica is promoted, routing flips, and the old primary follows the new one
(Redis) or stays read-only until a resync runbook re-admits it (PostgreSQL).

When the primary is not reachable it is a failover under the rule of
DESIGN.md, and each condition can only be waived by a person, with --reason:
  - the primary's site is down by the leader's verdict   (--assume-site-down)
  - the old primary is fenced: made read-only directly, or
    powered off through --fence-exec / --fence-redfish   (--assume-fenced)
  - the replica's last known lag is within the RPO       (--accept-data-loss)
Every decision, and every refusal, is written to the audit log with who and
why; an accepted loss is recorded with its size.

Two leaders (or two operators) can never both promote: the epoch
compare-and-swap lets exactly one through. --check only prints the
readiness checks (replica outside the site, lag within RPO, capacity,
fence path) and changes nothing.

Passwords come from the environment: PGPASSWORD, REDISCLI_AUTH,
FIREBREAK_REDFISH_PASSWORD.`,
		Example: `  # readiness of the accounts database
  firebreak failover accounts --topology prod.yaml --check

  # planned switchover to the replica in ansan (zero loss)
  firebreak failover accounts --topology prod.yaml --to ansan --reason "pangyo UPS work CHG-812"

  # pangyo burned, the replica was 40 s behind, and the business accepts it
  firebreak failover accounts --topology prod.yaml --fence-redfish https://bmc-db1/redfish/v1/Systems/1/Actions/ComputerSystem.Reset \
      --accept-data-loss --reason "RTO over RPO, approved by CTO (INC-2022-10-15)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFailover(cmd.Context(), c, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topology, "topology", "", "topology file (required)")
	fl.StringSliceVar(&f.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "store (etcd) client endpoints")
	fl.StringVar(&f.to, "to", "", "site to promote a replica in (default: the best replica in a surviving site)")
	fl.StringVar(&f.mode, "mode", "auto", "auto (switchover when the primary is healthy, else failover), switchover or failover")
	fl.BoolVar(&f.acceptLoss, "accept-data-loss", false, "promote even if the replica's lag exceeds the RPO (needs --reason; the loss is recorded)")
	fl.BoolVar(&f.assumeSiteDown, "assume-site-down", false, "treat the primary's site as down without a verdict (needs --reason)")
	fl.BoolVar(&f.assumeFenced, "assume-fenced", false, "treat the old primary as fenced when no fence succeeded (needs --reason)")
	fl.StringVar(&f.reason, "reason", "", "why (recorded in the audit log; required with any override)")
	fl.StringVar(&f.who, "who", defaultWho(), "who decides (default: $USER)")
	fl.BoolVar(&f.check, "check", false, "only print the readiness checks")
	fl.BoolVar(&f.jsonOut, "json", false, "print JSON")
	fl.StringVar(&f.fenceExec, "fence-exec", "", "STONITH command for an unreachable primary (gets FIREBREAK_FENCE_ADDRESS/PORT/SITE)")
	fl.StringVar(&f.fenceRedfish, "fence-redfish", "", "STONITH: Redfish ComputerSystem.Reset URL of the primary's BMC (ForceOff)")
	fl.StringVar(&f.redfishUser, "fence-redfish-user", "", "Redfish user (password from FIREBREAK_REDFISH_PASSWORD)")
	fl.StringVar(&f.resyncExec, "resync-exec", "", "PostgreSQL resync runbook command for the old primary after a switchover (pg_rewind or re-clone)")
	fl.StringVar(&f.pgUser, "pg-user", "postgres", "PostgreSQL superuser")
	fl.StringVar(&f.pgDatabase, "pg-database", "postgres", "PostgreSQL database to connect to")
	fl.StringVar(&f.pgSSLMode, "pg-sslmode", "prefer", "PostgreSQL sslmode")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "bound on the whole operation")
	_ = cmd.MarkFlagRequired("topology")
	return cmd
}

func runFailover(ctx context.Context, c *cli, f *failoverFlags, name string) error {
	usage := func(format string, a ...any) error { return &exitError{code: 2, err: fmt.Errorf(format, a...)} }
	if f.mode != "auto" && f.mode != "switchover" && f.mode != "failover" {
		return usage("--mode %q: expected auto, switchover or failover", f.mode)
	}
	if (f.acceptLoss || f.assumeSiteDown || f.assumeFenced) && strings.TrimSpace(f.reason) == "" {
		return usage("--reason is required with --accept-data-loss, --assume-site-down or --assume-fenced: it is recorded in the audit log")
	}
	topo, err := topology.Load(f.topology)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ds := topo.Datastore(name)
	if ds == nil {
		var names []string
		for _, d := range topo.Datastores {
			names = append(names, d.Name)
		}
		return usage("datastore %q is not in %s (datastores: %s)", name, f.topology, strings.Join(names, ", "))
	}
	if f.to != "" && topo.Site(f.to) == nil {
		return usage("--to %q: no such site in %s", f.to, f.topology)
	}
	var eng failover.Engine
	switch ds.Engine {
	case "postgres", "postgresql":
		o := pg.Options{User: f.pgUser, Password: os.Getenv("PGPASSWORD"), Database: f.pgDatabase, SSLMode: f.pgSSLMode}
		if f.resyncExec != "" {
			o.ResyncCommand = strings.Fields(f.resyncExec)
		}
		eng = pg.New(o)
	case "redis":
		eng = redisfo.New(redisfo.Options{Password: os.Getenv("REDISCLI_AUTH")})
	default:
		return usage("datastore %s: engine %q has no failover driver (postgres, redis)", name, ds.Engine)
	}
	var fencer failover.Fencer
	switch {
	case f.fenceExec != "" && f.fenceRedfish != "":
		return usage("--fence-exec and --fence-redfish: choose one")
	case f.fenceExec != "":
		fencer = failover.ExecFencer{Command: strings.Fields(f.fenceExec)}
	case f.fenceRedfish != "":
		fencer = failover.RedfishFencer{URL: f.fenceRedfish, User: f.redfishUser, Password: os.Getenv("FIREBREAK_REDFISH_PASSWORD")}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := clientv3.New(clientv3.Config{Endpoints: f.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("connect to store %s: %w", strings.Join(f.endpoints, ","), err)
	}
	defer cl.Close()
	m, err := failover.New(failover.Config{
		Datastore: ds, Engine: eng, Client: cl, SiteDown: failover.StoreVerdict(cl), Fencer: fencer,
		Who: f.who, Logger: c.logger(),
	})
	if err != nil {
		return err
	}
	r, err := m.Check(ctx)
	if err != nil {
		return err
	}
	if f.check {
		return printFailover(c, f.jsonOut, r, readinessText(r))
	}
	req := failover.Request{To: f.to, Who: f.who, Reason: f.reason}
	ov := &failover.Override{Who: f.who, Reason: f.reason}
	if f.acceptLoss {
		req.AcceptLoss = ov
	}
	if f.assumeSiteDown {
		req.AssumeSiteDown = ov
	}
	if f.assumeFenced {
		req.AssumeFenced = ov
	}
	switchover := f.mode == "switchover" || (f.mode == "auto" && r.PrimaryUp)
	var res failover.Result
	if switchover {
		res, err = m.Switchover(ctx, req)
	} else {
		res, err = m.Failover(ctx, req)
	}
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, failover.ErrRPO):
			hint = " (promote anyway with --accept-data-loss --reason ...; the loss is recorded)"
		case errors.Is(err, failover.ErrSiteUp):
			hint = " (no down verdict for the primary's site; a person can say so with --assume-site-down --reason ...)"
		case errors.Is(err, failover.ErrFenceFailed):
			hint = " (configure --fence-exec or --fence-redfish, or confirm by hand with --assume-fenced --reason ...)"
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %w%s", name, err, hint)}
	}
	kind := "failover"
	if switchover {
		kind = "switchover"
	}
	text := fmt.Sprintf("%s %s: epoch %d, primary %s (was %s), fenced by %s, took %s\n",
		name, kind, res.Epoch.Epoch, res.Epoch.Primary, res.Epoch.Previous, res.FencedBy, res.Total.Round(time.Millisecond))
	if res.Epoch.LossAccepted {
		text += fmt.Sprintf("  data loss accepted by %s: %d bytes, %s (%s)\n", f.who, res.Epoch.LagBytes, res.Epoch.LagTime, f.reason)
	}
	text += fmt.Sprintf("  the old primary %s stays out until it is resynced\n", res.Epoch.Previous)
	return printFailover(c, f.jsonOut, res, text)
}

func readinessText(r failover.Readiness) string {
	var b strings.Builder
	fmt.Fprintln(&b, r.Summary())
	for _, ch := range r.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-21s %s\n", mark, ch.Name, ch.Detail)
	}
	for _, rep := range r.Replicas {
		state := "unreachable: " + rep.Err
		if rep.Reachable {
			state = fmt.Sprintf("%s, lag %d bytes / %s", rep.State.Role, rep.LagBytes, rep.LagTime)
			if !rep.LagKnown {
				state = rep.State.Role + ", lag unknown"
			}
		}
		fmt.Fprintf(&b, "  replica %s (%s): %s\n", rep.Member, rep.Member.Mode, state)
	}
	return b.String()
}

func printFailover(c *cli, asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(c.stdout, text)
	return err
}
