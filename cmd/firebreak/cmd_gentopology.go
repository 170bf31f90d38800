package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/topogen"
)

func newGenTopologyCmd(c *cli) *cobra.Command {
	var (
		cfg topogen.Config
		out string
	)
	cmd := &cobra.Command{
		Use:   "gen-topology",
		Short: "Write a large synthetic topology, for benchmarks and load tests",
		Long: `gen-topology writes a synthetic topology: services laid out in dependency
layers (--depth) with a skewed choice of dependencies, so that a few shared
services are needed by most others; endpoints spread over 2 to 4 sites for
most services and one site for a small share (--single-site); datastores with
sync/async replicas and backups; one firebreak node per site.

The same seed gives the same file. The output is meant for
'firebreak analyze' and benchmarks; do not commit large outputs (bench/data/
is ignored by git).`,
		Example: `  firebreak gen-topology --services 10000 --sites 20 -o bench/data/10k.yaml
  firebreak analyze --timing --format json bench/data/10k.yaml > /dev/null`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := topogen.Generate(cfg)
			w := c.stdout
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("gen-topology: %w", err)}
				}
				defer f.Close()
				w = f
				if err := topogen.Write(w, t); err != nil {
					return &exitError{code: 2, err: err}
				}
				if err := f.Close(); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("gen-topology: %w", err)}
				}
				fmt.Fprintf(c.stderr, "%s: %d services, %d endpoints, %d sites, %d datastores\n",
					out, len(t.Services), len(t.Endpoints()), len(t.Sites), len(t.Datastores))
				return nil
			}
			if err := topogen.Write(w, t); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Services, "services", 1000, "number of services")
	f.IntVar(&cfg.Sites, "sites", 5, "number of datacenter sites")
	f.IntVar(&cfg.EndpointsPerService, "endpoints", 10, "endpoints per service")
	f.Float64Var(&cfg.AvgDeps, "deps", 5, "mean dependencies per service")
	f.IntVar(&cfg.Depth, "depth", 8, "dependency layers (longest chain)")
	f.IntVar(&cfg.Datastores, "datastores", 0, "number of datastores (default services/10)")
	f.Float64Var(&cfg.SingleSite, "single-site", 0.02, "share of services confined to one site (negative: none)")
	f.IntVar(&cfg.RacksPerSite, "racks", 0, "racks declared per site (0: none)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	f.StringVarP(&out, "output", "o", "", "file to write (default: stdout)")
	return cmd
}
