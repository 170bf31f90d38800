package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/analysis"
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

--fail-on SEVERITY makes analyze exit 1 when a finding at or above it
exists, for CI gating. Exit status 2 means the file could not be read.`,
		Example: `  firebreak analyze examples/kakao-2022.yaml
  firebreak analyze --fail-on high examples/fixed.yaml      # CI gate
  firebreak analyze --format json topology.yaml | jq '.findings[] | select(.severity=="critical")'
  firebreak analyze --format dot --scenario site:pangyo examples/kakao-2022.yaml | dot -Tsvg > blast.svg`,
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
			if err := analysis.Write(c.stdout, format, res, t, opts); err != nil {
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
	return cmd
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
