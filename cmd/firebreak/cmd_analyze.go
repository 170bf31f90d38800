package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/analysis"
	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

func newAnalyzeCmd(c *cli) *cobra.Command {
	var (
		format   string
		failOn   string
		scenario string
		noPairs  bool
		timing   bool
		workers  int
		live     bool
		api      client.Flags
	)
	cmd := &cobra.Command{
		Use:   "analyze FILE",
		Short: "Find what the loss of each site, site pair or rack stops, and why",
		Long: `analyze evaluates every single-site loss, every site-pair loss, every declared
rack loss and every compromised site of a topology. For each it reports the
services that stop or degrade with the dependency chain that explains it
(taxi -> login(no endpoint outside pangyo)), the datastores that fail over or
are lost, and whether firebreak's own nodes keep a majority.

Findings have a stable ID (rule/subject/site), a severity (info, low, medium,
high, critical) and a concrete fix. Ops tools (kind: ops) that do not survive
a single-site loss are critical. docs/analysis.md explains every rule.

--format text (default; coloured on a terminal unless NO_COLOR is set),
json (stable schema "firebreak.analysis/v1", see docs/analysis.md) or dot
(Graphviz dependency graph with the worst single-site blast radius, or the
one chosen with --scenario, highlighted).

--live adds what a running node sees now: each datastore's failover
readiness (replica outside the primary's site, lag now against the RPO,
capacity, fence path; automatic or manual failover) from the node's
GET /api/v1/datastores — a "Live failover readiness" section in text, a
"live" field in json. The node is chosen with --server and --token (or the
environment and client config, as for firebreak status).

--fail-on SEVERITY makes analyze exit 1 when a finding at or above it
exists, for CI gating. Exit status 2 means the file could not be read.`,
		Example: `  firebreak analyze examples/kakao-2022.yaml
  firebreak analyze --fail-on high examples/fixed.yaml      # CI gate
  firebreak analyze --format json topology.yaml | jq '.findings[] | select(.severity=="critical")'
  firebreak analyze --format dot --scenario site:pangyo examples/kakao-2022.yaml | dot -Tsvg > blast.svg
  firebreak analyze --live --server http://10.0.2.5:7480 --token-file ~/.fb-token topology.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var threshold analysis.Severity
			if failOn != "" {
				s, err := analysis.ParseSeverity(failOn)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--fail-on: %w", err)}
				}
				threshold = s
			}
			switch format {
			case analysis.FormatText, analysis.FormatJSON, analysis.FormatDot:
			default:
				return &exitError{code: 2, err: fmt.Errorf("--format: unknown format %q (expected text, json or dot)", format)}
			}
			if live && format == analysis.FormatDot {
				return &exitError{code: 2, err: errors.New("--live: not available with --format dot (use text or json)")}
			}
			var liveRes *liveReadiness
			if live {
				cl, err := api.Client()
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--live: %w", err)}
				}
				liveRes, err = fetchLive(cmd.Context(), cl)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--live: %w", err)}
				}
			}
			start := time.Now()
			t, err := topology.Load(args[0])
			if err != nil {
				if l, ok := yamlnode.AsList(err); ok {
					for _, e := range l {
						fmt.Fprintln(c.stderr, e.Error())
					}
					return &exitError{code: 2, err: fmt.Errorf("%s: %d error(s)", args[0], len(l))}
				}
				return &exitError{code: 2, err: err}
			}
			parsed := time.Now()
			res, err := analysis.Analyze(cmd.Context(), t, analysis.Options{Workers: workers, NoPairs: noPairs})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			analysed := time.Now()
			opts := analysis.WriteOptions{Color: format == analysis.FormatText && colorOK(c), Scenario: scenario}
			if err := writeAnalysis(c.stdout, format, res, t, opts, liveRes); err != nil {
				return &exitError{code: 2, err: err}
			}
			if timing {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(c.stderr, "timing: parse %s, analysis %s (%d scenarios, %d services), output %s, heap in use %d MiB, sys %d MiB\n",
					parsed.Sub(start).Round(time.Millisecond), analysed.Sub(parsed).Round(time.Millisecond),
					len(res.Scenarios), res.Services, time.Since(analysed).Round(time.Millisecond),
					ms.HeapInuse>>20, ms.Sys>>20)
			}
			if failOn != "" {
				if bad := res.AtLeast(threshold); len(bad) > 0 {
					return &exitError{code: 1, err: fmt.Errorf("%d finding(s) at or above %s (first: %s)", len(bad), threshold, bad[0].ID)}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text, json or dot")
	f.StringVar(&failOn, "fail-on", "", "exit 1 when a finding of this severity or above exists: info, low, medium, high or critical")
	f.StringVar(&scenario, "scenario", "", "scenario the dot format highlights, e.g. site:pangyo (default: the worst single site)")
	f.BoolVar(&noPairs, "no-pairs", false, "skip the site-pair scenarios")
	f.BoolVar(&timing, "timing", false, "print parse and analysis time and memory to stderr")
	f.IntVar(&workers, "workers", 0, "scenarios evaluated in parallel (default: number of CPUs)")
	f.BoolVar(&live, "live", false, "add the datastores' live failover readiness from a running node (--server, --token)")
	api.AddFlags(f)
	return cmd
}

// liveReadiness is the "live" field of analyze's json output.
type liveReadiness struct {
	// Fetched is when the node answered.
	Fetched    time.Time                 `json:"fetched"`
	Datastores []view.DatastoreReadiness `json:"datastores"`
}

func fetchLive(ctx context.Context, cl *client.Client) (*liveReadiness, error) {
	ds, err := cl.Datastores(ctx)
	if err != nil {
		return nil, fmt.Errorf("datastore readiness: %w", err)
	}
	if ds == nil {
		ds = []view.DatastoreReadiness{}
	}
	return &liveReadiness{Fetched: time.Now().UTC(), Datastores: ds}, nil
}

// writeAnalysis writes the analysis and, when live is set, the live
// readiness: a section after the text, a "live" field of the json object.
func writeAnalysis(w io.Writer, format string, res *analysis.Result, t *topology.Topology, opts analysis.WriteOptions, live *liveReadiness) error {
	if live == nil {
		return analysis.Write(w, format, res, t, opts)
	}
	if format == analysis.FormatJSON {
		var buf bytes.Buffer
		if err := analysis.Write(&buf, format, res, t, opts); err != nil {
			return err
		}
		doc := bytes.TrimRight(buf.Bytes(), " \n")
		if len(doc) == 0 || doc[len(doc)-1] != '}' {
			return errors.New("analysis json is not an object")
		}
		lv, err := json.MarshalIndent(live, "  ", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s,\n  \"live\": %s\n}\n", bytes.TrimRight(doc[:len(doc)-1], " \n"), lv)
		return err
	}
	if err := analysis.Write(w, format, res, t, opts); err != nil {
		return err
	}
	return writeLiveText(w, live)
}

// writeLiveText writes the "Live failover readiness" section.
func writeLiveText(w io.Writer, live *liveReadiness) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nLive failover readiness (as of %s UTC)\n", live.Fetched.Format("2006-01-02 15:04:05"))
	if len(live.Datastores) == 0 {
		b.WriteString("  no datastores reported by the node\n")
	}
	for _, d := range live.Datastores {
		state := "NOT READY"
		switch {
		case d.Mode == view.FailoverManual:
			state = "MANUAL"
		case d.OK:
			state = "ready"
		}
		lag := "unknown"
		if d.LagKnown {
			lag = d.LagNow
		}
		yn := func(ok bool) string {
			if ok {
				return "yes"
			}
			return "no"
		}
		fmt.Fprintf(&b, "  %-9s %s (%s, %s, epoch %d): primary in %s\n", state, d.Datastore, d.Engine, d.Mode, d.Epoch, d.PrimarySite)
		if d.Mode == view.FailoverManual {
			fmt.Fprintf(&b, "            replica outside site: %s; RPO %s; %s\n", yn(d.ReplicaOutsideSite), d.RPO, d.Summary)
			continue
		}
		fmt.Fprintf(&b, "            replica outside site: %s; lag now %s vs RPO %s; capacity: %s; fence path: %s\n",
			yn(d.ReplicaOutsideSite), lag, d.RPO, yn(d.CapacityOK), yn(d.FencePathOK))
		if !d.OK {
			fmt.Fprintf(&b, "            %s\n", d.Summary)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// colorOK reports whether text output may use colours: stdout is a
// terminal and NO_COLOR is unset.
func colorOK(c *cli) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	f, ok := c.stdout.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
