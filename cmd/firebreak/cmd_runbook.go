package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/runbook"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

// runbookStore is where runbook commands keep runs: an external etcd
// (--endpoints) or an embedded single member in --data-dir.
type runbookStore struct {
	endpoints []string
	dataDir   string
}

func (s *runbookStore) flags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&s.endpoints, "endpoints", nil, "etcd client URLs of the firebreak store (default: an embedded single-member store in --data-dir)")
	cmd.Flags().StringVar(&s.dataDir, "data-dir", "firebreak.etcd", "data directory of the embedded store, used when --endpoints is empty")
}

// open connects to the store; close releases it (and stops an embedded
// member).
func (s *runbookStore) open(ctx context.Context) (j *runbook.EtcdJournal, closeFn func(), err error) {
	var e *store.Member
	endpoints := s.endpoints
	if len(endpoints) == 0 {
		e, err = store.StartLoopback(ctx, store.MemberConfig{Name: "runbook", Dir: s.dataDir}, "127.0.0.1")
		if err != nil {
			return nil, nil, fmt.Errorf("start embedded store in %s: %w (is another firebreak using it? use --endpoints)", s.dataDir, err)
		}
		endpoints = []string{e.ClientURL()}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		if e != nil {
			e.Close()
		}
		return nil, nil, fmt.Errorf("connect to store: %w", err)
	}
	return runbook.NewEtcdJournal(c), func() {
		c.Close()
		if e != nil {
			e.Close()
		}
	}, nil
}

// resolveRunbook turns a runbook name into a file: arg itself when it
// exists, else runbooks/NAME.yaml, else examples/runbooks/NAME.yaml.
func resolveRunbook(arg string) string {
	if _, err := os.Stat(arg); err == nil || strings.ContainsAny(arg, "/.") {
		return arg
	}
	for _, dir := range []string{"runbooks", filepath.Join("examples", "runbooks")} {
		p := filepath.Join(dir, arg+".yaml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return arg
}

func newRunbookCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "Run recovery runbooks: dependency-ordered, throttled, resumable",
		Long: `A runbook is a DAG of steps declared in YAML (see docs/runbooks.md): each step
applies an action through a driver (exec, ssh, http, redfish) to a set of
targets (servers from the runbook's inventory, services and datastores from
the topology), verifies it, retries with backoff, and starts its dependants
target by target. Concurrency is limited globally, per site, per rack
(power-on inrush), per driver and per step; lower tiers go first.

Every target×step transition is recorded in the store, so a run survives the
loss of the node running it: another node (or 'runbook resume --execute')
continues where it stopped, re-running idempotent actions that were in
flight and verifying non-idempotent ones before acting again.`,
		Example: `  firebreak runbook run examples/runbooks/cold-start.yaml --dry-run
  firebreak runbook run examples/runbooks/cold-start.yaml --only site=ansan --max-parallel 500
  firebreak runbook status cold-start-20261201-063000 --watch
  firebreak runbook pause cold-start-20261201-063000`,
	}
	cmd.AddCommand(newRunbookRunCmd(c), newRunbookStatusCmd(c), newRunbookListCmd(c),
		newRunbookControlCmd(c, "pause", runbook.ControlPause, "Pause a run: no new actions start; running ones finish"),
		newRunbookResumeCmd(c),
		newRunbookControlCmd(c, "abort", runbook.ControlAbort, "Abort a run: no new actions start; the run ends when running ones finish"))
	return cmd
}

func printRunbookErr(c *cli, err error) error {
	if l, ok := yamlnode.AsList(err); ok {
		for _, e := range l {
			fmt.Fprintln(c.stderr, e.Error())
		}
		return &exitError{code: 1, err: fmt.Errorf("%d error(s)", len(l))}
	}
	return err
}

func newRunbookRunCmd(c *cli) *cobra.Command {
	var (
		st          runbookStore
		dryRun      bool
		only        []string
		maxParallel int
		id          string
	)
	cmd := &cobra.Command{
		Use:   "run FILE|NAME",
		Short: "Run a runbook (or, with --dry-run, print its plan and predicted makespan)",
		Long: `run loads the runbook FILE, or NAME.yaml from ./runbooks or ./examples/runbooks
(and the topology and inventory it names), checks
it, stores a new run in the store and executes it in this process with a live
progress display: bars per step, counts, ETA and failures with reasons (redrawn
on a terminal, one line every 5 seconds otherwise). Interrupting it (Ctrl-C)
leaves the run resumable with 'runbook resume --execute ID'.

--dry-run prints the plan instead: each step's targets, driver, dependencies and
limits, and the predicted makespan: the lower bound given the limits, the
dependencies and each step's 'estimate' duration.`,
		Example: `  firebreak runbook run examples/runbooks/cold-start.yaml --dry-run
  firebreak runbook run cold-start.yaml --only site=ansan --only role=storage --max-parallel 200
  firebreak runbook run cold-start.yaml --endpoints http://10.0.1.5:2379`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rb, files, err := runbook.Load(resolveRunbook(args[0]))
			if err != nil {
				return printRunbookErr(c, err)
			}
			opts := runbook.Options{Only: only, MaxParallel: maxParallel}
			if dryRun {
				plan, err := runbook.NewPlan(rb, opts, nil)
				if err != nil {
					return err
				}
				printPlan(c.stdout, plan)
				return nil
			}
			ctx := cmd.Context()
			j, closeStore, err := st.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			r := &runbook.Runner{Journal: j, Drivers: runbook.BuildDrivers, Logger: c.logger()}
			runID, err := r.Create(ctx, rb, files, opts, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "run %s created\n", runID)
			return executeRun(ctx, c, r, runID)
		},
	}
	st.flags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and the predicted makespan; run nothing")
	cmd.Flags().StringArrayVar(&only, "only", nil, "restrict to targets matching key=value (site, rack, role, kind, name, label.KEY); repeat to narrow")
	cmd.Flags().IntVar(&maxParallel, "max-parallel", 0, "replace the runbook's global concurrency limit")
	cmd.Flags().StringVar(&id, "id", "", "run id (default NAME-YYYYMMDD-HHMMSS)")
	return cmd
}

// executeRun runs id in this process with the progress display.
func executeRun(ctx context.Context, c *cli, r *runbook.Runner, id string) error {
	disp := newProgressDisplay(c.stdout)
	r.OnProgress = disp.update
	res, err := r.Resume(ctx, id)
	disp.final(res.Progress)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, err: fmt.Errorf("interrupted; continue with: firebreak runbook resume --execute %s", id)}
		}
		return err
	}
	if res.Status != runbook.StatusDone {
		return &exitError{code: 1, err: fmt.Errorf("run %s ended %s", id, res.Status)}
	}
	return nil
}

// progressDisplay redraws bars on a terminal and prints periodic lines
// otherwise. update is called from the runner's loop and must not block long.
type progressDisplay struct {
	w     io.Writer
	tty   bool
	lines int
	last  time.Time
}

func newProgressDisplay(w io.Writer) *progressDisplay {
	d := &progressDisplay{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			d.tty = true
		}
	}
	return d
}

func (d *progressDisplay) update(p runbook.Progress) {
	if !d.tty {
		if time.Since(d.last) >= 5*time.Second {
			d.last = time.Now()
			fmt.Fprintln(d.w, p.Line())
		}
		return
	}
	var b strings.Builder
	p.Render(&b, 40)
	if d.lines > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA\x1b[J", d.lines)
	}
	fmt.Fprint(d.w, b.String())
	d.lines = strings.Count(b.String(), "\n")
}

func (d *progressDisplay) final(p runbook.Progress) {
	if p.RunID == "" {
		return
	}
	if d.tty && d.lines > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA\x1b[J", d.lines)
	}
	p.Render(d.w, 40)
}

func printPlan(w io.Writer, p *runbook.Plan) {
	rb := p.Runbook
	fmt.Fprintf(w, "runbook %s: %d steps, %d targets, %d actions\n", rb.Name, len(p.Steps), len(p.Targets), p.Items())
	for i, ps := range p.Steps {
		s := ps.Step
		var deps []string
		for _, d := range s.DependsOn {
			deps = append(deps, d.Step+" ("+d.Scope+")")
		}
		fmt.Fprintf(w, "%2d. %-16s %6d targets  %s %s", i+1, s.Name, len(ps.Items), s.Action.Driver, s.Action.Op)
		if s.Verify != nil {
			fmt.Fprintf(w, ", verify %s %s", s.Verify.Driver, s.Verify.Op)
		}
		if !s.Idempotent {
			fmt.Fprint(w, ", not idempotent")
		}
		fmt.Fprintln(w)
		if len(deps) > 0 {
			fmt.Fprintf(w, "    after: %s\n", strings.Join(deps, ", "))
		}
		fmt.Fprintf(w, "    retries %d, backoff %s, timeout %s, estimate %s", s.Retries, s.Backoff, s.Timeout, s.Estimate)
		if s.Limits != (runbook.StepLimits{}) {
			fmt.Fprintf(w, ", limits parallel=%d perSite=%d perRack=%d", s.Limits.Parallel, s.Limits.PerSite, s.Limits.PerRack)
		}
		fmt.Fprintln(w)
	}
	l := rb.Limits
	fmt.Fprintf(w, "limits: global %d, per site %d, per rack %d", p.Limiters[0].Cap, l.PerSite, l.PerRack)
	for d, n := range l.PerDriver {
		fmt.Fprintf(w, ", %s %d", d, n)
	}
	fmt.Fprintln(w, " (0 = unlimited)")
	b := p.Predict()
	fmt.Fprintf(w, "predicted makespan: %s\n", b)
}

func newRunbookStatusCmd(c *cli) *cobra.Command {
	var (
		st     runbookStore
		watch  bool
		asJSON bool
		every  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [RUN-ID]",
		Short: "Show a run's progress from the store (the latest run when no id is given)",
		Long: `status rebuilds a run's progress from the store alone, so it works on any node,
whichever node executes the run: per step the targets done, running, failed
and blocked by a failed dependency, with the latest failure reasons.
--watch redraws it until the run ends; --json prints it for scripts.`,
		Example: `  firebreak runbook status
  firebreak runbook status cold-start-20261201-063000 --watch --endpoints http://10.0.1.5:2379
  firebreak runbook status cold-start-20261201-063000 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			j, closeStore, err := st.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			id := ""
			if len(args) == 1 {
				id = args[0]
			} else {
				ids, err := j.List(ctx)
				if err != nil {
					return err
				}
				if len(ids) == 0 {
					return errors.New("no runs in the store")
				}
				id = ids[len(ids)-1]
			}
			disp := newProgressDisplay(c.stdout)
			disp.last = time.Time{}
			for {
				p, err := runbook.ReadProgress(ctx, j, id)
				if err != nil {
					return err
				}
				switch {
				case asJSON:
					enc := json.NewEncoder(c.stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(p); err != nil {
						return err
					}
				case watch && disp.tty:
					disp.update(p)
				default:
					p.Render(c.stdout, 40)
				}
				if !watch || p.Status == runbook.StatusDone || p.Status == runbook.StatusFailed || p.Status == runbook.StatusAborted {
					return nil
				}
				select {
				case <-time.After(every):
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
	st.flags(cmd)
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw until the run ends")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "with --watch, how often to read the store")
	return cmd
}

func newRunbookListCmd(c *cli) *cobra.Command {
	var st runbookStore
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List runs in the store with their state",
		Example: "  firebreak runbook list --endpoints http://10.0.1.5:2379",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			j, closeStore, err := st.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			ids, err := j.List(ctx)
			if err != nil {
				return err
			}
			for _, id := range ids {
				s, err := j.State(ctx, id)
				if err != nil {
					return err
				}
				status := s.Status
				if status == "" {
					status = "created"
				}
				fmt.Fprintf(c.stdout, "%-40s %-8s %s\n", id, status, s.Owner)
			}
			return nil
		},
	}
	st.flags(cmd)
	return cmd
}

func newRunbookControlCmd(c *cli, name, control, short string) *cobra.Command {
	var st runbookStore
	cmd := &cobra.Command{
		Use:     name + " RUN-ID",
		Short:   short,
		Long:    short + ".\nThe request is stored; the runner executing the run, on whichever node, acts on it.",
		Example: "  firebreak runbook " + name + " cold-start-20261201-063000",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			j, closeStore, err := st.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := j.SetControl(ctx, args[0], control); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "run %s: %s requested\n", args[0], name)
			return nil
		},
	}
	st.flags(cmd)
	return cmd
}

func newRunbookResumeCmd(c *cli) *cobra.Command {
	var (
		st      runbookStore
		execute bool
	)
	cmd := &cobra.Command{
		Use:   "resume RUN-ID",
		Short: "Resume a paused run, or (--execute) continue a run in this process",
		Long: `resume clears a pause: the runner executing the run starts new actions again.

With --execute, this process claims the run and executes it from where its
journal stops, with the progress display: use it when the process or node
that ran it is gone. The previous runner, if it is still alive, is fenced
out: its next write to the store fails and it stops. Idempotent actions that
were in flight run again; non-idempotent ones are verified first and run
only if the verification fails.`,
		Example: `  firebreak runbook resume cold-start-20261201-063000
  firebreak runbook resume --execute cold-start-20261201-063000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			j, closeStore, err := st.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := j.SetControl(ctx, args[0], runbook.ControlRun); err != nil {
				return err
			}
			if !execute {
				fmt.Fprintf(c.stdout, "run %s: resume requested\n", args[0])
				return nil
			}
			r := &runbook.Runner{Journal: j, Drivers: runbook.BuildDrivers, Logger: c.logger()}
			return executeRun(ctx, c, r, args[0])
		},
	}
	st.flags(cmd)
	cmd.Flags().BoolVar(&execute, "execute", false, "claim the run and execute it in this process")
	return cmd
}
