package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
)

// overrideFlags are shared by the commands that read and write overrides.
// They talk to a node's HTTP API (--server, --token-file, the environment
// or the client config; see package client), which checks the caller's
// role, records the token's name in the audit log and forwards the change
// to the leader. --endpoints switches to the break-glass path: the store
// is written directly (no role check; --who is recorded), for when no API
// node answers.
type overrideFlags struct {
	api       client.Flags
	endpoints []string
	reason    string
	who       string
	dur       time.Duration
	timeout   time.Duration
}

// breakGlassHelp ends the Long text of every command that talks to the API.
const breakGlassHelp = `

It talks to a node's HTTP API: --server (or $FIREBREAK_SERVER, or server:
in ~/.config/firebreak/client.yaml; default http://127.0.0.1:7480) with
--token-file / --token (or $FIREBREAK_TOKEN_FILE / $FIREBREAK_TOKEN, or
tokenFile: in the config file). Any node answers; changes need an operator
token and are forwarded to the leader; the audit log records the token's
name.

Break glass: when no API node answers but the store does, --endpoints
talks to the store (etcd) directly. That path checks no role and records
--who (default $USER) as the author; use it only in an emergency.`

func (f *overrideFlags) storeFlags(cmd *cobra.Command) {
	f.api.AddFlags(cmd.Flags())
	cmd.Flags().StringSliceVar(&f.endpoints, "endpoints", nil, "break glass: write the store (etcd) at these client endpoints directly instead of using the API")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "API call or store operation timeout")
}

func (f *overrideFlags) writeFlags(cmd *cobra.Command, withFor bool) {
	f.storeFlags(cmd)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.Flags().StringVar(&f.who, "who", defaultWho(), "who decides, recorded on the break-glass --endpoints path (the API records the token's name)")
	if withFor {
		cmd.Flags().DurationVar(&f.dur, "for", time.Hour, "how long the override lasts before it expires")
	}
}

// direct reports whether the command uses the break-glass store path.
func (f *overrideFlags) direct() bool { return len(f.endpoints) > 0 }

// apiClient returns a client of the configured node.
func (f *overrideFlags) apiClient() (*client.Client, error) {
	c, err := f.api.Client()
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return c, nil
}

// apiError turns an API call's error into the command's: refusals and
// missing things exit 1 as they are; a node that does not answer exits 1
// with the break-glass hint.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	if client.StatusCode(err) != 0 {
		return &exitError{code: 1, err: err}
	}
	return &exitError{code: 1, err: fmt.Errorf("%w\nno API node answered: try another with --server; break glass: --endpoints talks to the store directly", err)}
}

func defaultWho() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func (f *overrideFlags) check(withFor bool) error {
	if strings.TrimSpace(f.reason) == "" {
		return &exitError{code: 2, err: errors.New("--reason is required: say why, it is recorded in the audit log")}
	}
	if strings.TrimSpace(f.who) == "" {
		return &exitError{code: 2, err: errors.New("--who is empty and $USER is unset")}
	}
	if withFor && f.dur <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--for %s: expected a positive duration such as 30m or 2h", f.dur)}
	}
	return nil
}

func (f *overrideFlags) client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: f.endpoints, DialTimeout: f.timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to store %s: %w", strings.Join(f.endpoints, ","), err)
	}
	return cli, nil
}

// inStore runs fn against the store itself (the break-glass --endpoints
// path): it connects to the endpoints, bounds fn by --timeout and closes the
// connection afterwards.
func (f *overrideFlags) inStore(ctx context.Context, fn func(ctx context.Context, cl *clientv3.Client) error) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return fn(ctx, cl)
}

func (f *overrideFlags) put(ctx context.Context, c *cli, kind, target string) error {
	if !f.direct() {
		ac, err := f.apiClient()
		if err != nil {
			return err
		}
		var o view.Override
		if kind == decide.KindDrain {
			o, err = ac.Drain(ctx, target, f.reason, f.dur)
		} else {
			o, err = ac.SetOverride(ctx, kind, target, f.reason, f.dur)
		}
		if err != nil {
			return apiError(err)
		}
		printOverride(c, o.Override, o.Expires.Sub(o.Created).Round(time.Second))
		return nil
	}
	now := time.Now().UTC()
	o := decide.Override{ID: decide.OverrideID(kind, target), Kind: kind, Target: target, Who: f.who, Why: f.reason,
		Created: now, Expires: now.Add(f.dur)}
	err := f.inStore(ctx, func(ctx context.Context, cl *clientv3.Client) error {
		return decide.PutOverride(ctx, cl, o)
	})
	if err != nil {
		return err
	}
	printOverride(c, o, f.dur)
	return nil
}

func printOverride(c *cli, o decide.Override, d time.Duration) {
	fmt.Fprintf(c.stdout, "override %s: %s %s by %s until %s (%s)\n", o.ID, o.Kind, orAll(o.Target), o.Who,
		o.Expires.Format(time.RFC3339), d)
}

func orAll(s string) string {
	if s == "" {
		return "(all services)"
	}
	return s
}

func newDrainCmd(c *cli) *cobra.Command {
	var f overrideFlags
	cmd := &cobra.Command{
		Use:   "drain SITE --reason TEXT [--for 1h]",
		Short: "Take a whole site out of routing for a while (a human override)",
		Long: `drain records an override that takes every endpoint of SITE out of routing,
whatever the health checks say, until it expires (--for, default 1h) or
'firebreak undrain SITE' removes it. Who (default $USER) and why (--reason,
required) are stored with it and in the audit log.

A drain is a human decision: it does not count against
maxAutoEvacuatedSites and takes effect at once (no hold-down). Routing never
goes to zero endpoints: if draining leaves a service with nothing, the
leader keeps serving its last set and raises a fail-open alarm.
Draining the same site again replaces the earlier drain (new reason and
expiry).` + breakGlassHelp,
		Example: `  firebreak drain pangyo --reason "battery room fire alarm" --for 2h
  firebreak drain ansan --reason "planned UPS maintenance CHG-1234" --for 30m --server http://10.0.1.5:7480 --token-file ~/.config/firebreak/token
  # break glass (no API node answers):
  firebreak drain ansan --reason "API down, incident 42" --endpoints 10.0.1.5:2379`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(true); err != nil {
				return err
			}
			return f.put(cmd.Context(), c, decide.KindDrain, args[0])
		},
	}
	f.writeFlags(cmd, true)
	return cmd
}

func newUndrainCmd(c *cli) *cobra.Command {
	var f overrideFlags
	cmd := &cobra.Command{
		Use:   "undrain SITE --reason TEXT",
		Short: "Remove a site's drain so routing follows the health checks again",
		Long: `undrain deletes the drain override of SITE (recorded in the audit log with
who and why). The site's endpoints come back into routing as soon as the
leader sees them healthy; restoring capacity is never held down.` + breakGlassHelp,
		Example: `  firebreak undrain pangyo --reason "power restored, checks green"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(false); err != nil {
				return err
			}
			if !f.direct() {
				return f.undrainAPI(cmd.Context(), c, args[0])
			}
			return f.del(cmd.Context(), c, decide.OverrideID(decide.KindDrain, args[0]))
		},
	}
	f.writeFlags(cmd, false)
	return cmd
}

func (f *overrideFlags) undrainAPI(ctx context.Context, c *cli, site string) error {
	ac, err := f.apiClient()
	if err != nil {
		return err
	}
	ended, err := ac.Undrain(ctx, site, f.reason)
	if err != nil {
		return apiError(err)
	}
	for _, o := range ended {
		fmt.Fprintf(c.stdout, "override %s (drain %s by %s) ended\n", o.ID, o.Target, o.Who)
	}
	return nil
}

func (f *overrideFlags) del(ctx context.Context, c *cli, id string) error {
	if !f.direct() {
		ac, err := f.apiClient()
		if err != nil {
			return err
		}
		o, err := ac.ExpireOverride(ctx, id, f.reason)
		if err != nil {
			return apiError(err)
		}
		fmt.Fprintf(c.stdout, "override %s (%s %s by %s) ended\n", o.ID, o.Kind, orAll(o.Target), o.Who)
		return nil
	}
	err := f.inStore(ctx, func(ctx context.Context, cl *clientv3.Client) error {
		return decide.DeleteOverride(ctx, cl, id, f.who, f.reason, time.Now().UTC())
	})
	if err != nil {
		if errors.Is(err, decide.ErrNoOverride) {
			return &exitError{code: 1, err: err}
		}
		return err
	}
	fmt.Fprintf(c.stdout, "override %s removed by %s\n", id, f.who)
	return nil
}

func newOverrideCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "override",
		Short: "List, set and remove human overrides (drain, force up/down, freeze)",
		Long: `Overrides are human decisions that outrank the health verdicts: drain a
site, force an endpoint up or down, or freeze automatic routing changes.
Each has who, why and an expiry, and every change is audited.` + breakGlassHelp,
		Example: `  firebreak override list
  firebreak override force-down login/pangyo/10.1.0.10:443 --reason "bad deploy" --for 20m
  firebreak override freeze --reason "incident 42: hands off routing" --for 15m
  firebreak override delete freeze --reason "incident closed"`,
	}
	cmd.AddCommand(newOverrideListCmd(c), newOverrideSetCmd(c, decide.KindForceUp), newOverrideSetCmd(c, decide.KindForceDown),
		newOverrideSetCmd(c, decide.KindFreeze), newOverrideDeleteCmd(c))
	return cmd
}

func newOverrideListCmd(c *cli) *cobra.Command {
	var f overrideFlags
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List overrides with who, why and time left",
		Long:    `list prints the overrides in force (and, with --all, expired ones not yet deleted).` + breakGlassHelp,
		Example: "  firebreak override list --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ovs, err := f.list(cmd.Context(), all)
			if err != nil {
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tTARGET\tWHO\tEXPIRES\tWHY")
			n := 0
			for _, o := range ovs {
				left := "in " + o.Expires.Sub(now).Round(time.Second).String()
				if !o.Active(now) {
					if !all {
						continue
					}
					left = "expired"
				}
				n++
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Kind, orAll(o.Target), o.Who, left, o.Why)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(c.stderr, "no overrides in force")
			}
			return nil
		},
	}
	f.storeFlags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "include expired overrides")
	return cmd
}

// list returns the overrides, through the API or (break glass) the store.
func (f *overrideFlags) list(ctx context.Context, all bool) ([]decide.Override, error) {
	if !f.direct() {
		ac, err := f.apiClient()
		if err != nil {
			return nil, err
		}
		vs, err := ac.Overrides(ctx, all)
		if err != nil {
			return nil, apiError(err)
		}
		out := make([]decide.Override, len(vs))
		for i, v := range vs {
			out[i] = v.Override
		}
		return out, nil
	}
	var ovs []decide.Override
	err := f.inStore(ctx, func(ctx context.Context, cl *clientv3.Client) error {
		var err error
		ovs, err = decide.ListOverrides(ctx, cl)
		return err
	})
	return ovs, err
}

func newOverrideSetCmd(c *cli, kind string) *cobra.Command {
	var f overrideFlags
	cmd := &cobra.Command{RunE: func(cmd *cobra.Command, args []string) error {
		if err := f.check(true); err != nil {
			return err
		}
		target := ""
		if len(args) > 0 {
			target = args[0]
		}
		return f.put(cmd.Context(), c, kind, target)
	}}
	switch kind {
	case decide.KindFreeze:
		cmd.Use = "freeze [SERVICE] --reason TEXT [--for 1h]"
		cmd.Short = "Stop automatic routing changes (for one service or all)"
		cmd.Long = `freeze keeps routing as it is: verdicts are still computed and recorded,
but automation changes no route (and evacuates no site) until the freeze
expires or is deleted. Other overrides (drain, force) still apply.` + breakGlassHelp
		cmd.Example = `  firebreak override freeze --reason "investigating flapping checks" --for 15m
  firebreak override freeze login --reason "manual failover in progress"`
		cmd.Args = cobra.MaximumNArgs(1)
	default:
		cmd.Use = kind + " ENDPOINT-ID --reason TEXT [--for 1h]"
		cmd.Short = "Force an endpoint " + strings.TrimPrefix(kind, "force-") + " whatever its health checks say"
		cmd.Long = kind + ` overrides the verdict of one endpoint (ID service/site/address:port,
as 'firebreak status' shows it) until it expires or is deleted.` + breakGlassHelp
		cmd.Example = "  firebreak override " + kind + " login/pangyo/10.1.0.10:443 --reason \"checks misconfigured\" --for 30m"
		cmd.Args = cobra.ExactArgs(1)
	}
	f.writeFlags(cmd, true)
	return cmd
}

func newOverrideDeleteCmd(c *cli) *cobra.Command {
	var f overrideFlags
	cmd := &cobra.Command{
		Use:   "delete ID --reason TEXT",
		Short: "Remove an override before it expires",
		Long: `delete ends the override ID (see 'firebreak override list') now; the
change is audited. Through the API the record is kept, expired; on the
break-glass --endpoints path it is deleted.` + breakGlassHelp,
		Example: `  firebreak override delete force-down-login_pangyo_10.1.0.10_443 --reason "deploy rolled back"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(false); err != nil {
				return err
			}
			return f.del(cmd.Context(), c, args[0])
		},
	}
	f.writeFlags(cmd, false)
	return cmd
}
