package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/yamlnode"
)

func newValidateCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check topology files and print every error with file:line:col",
		Long: `validate parses each topology file and reports every problem it finds
(unknown keys, wrong types, unknown sites or services, dependency cycles,
duplicate names, bad durations, ports out of range, ...) as file:line:col.
It exits 1 when any file has an error.`,
		Example: "  firebreak validate examples/kakao-2022.yaml examples/fixed.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, f := range args {
				t, err := topology.Load(f)
				if err != nil {
					bad++
					if l, ok := yamlnode.AsList(err); ok {
						for _, e := range l {
							fmt.Fprintln(c.stderr, e.Error())
						}
						fmt.Fprintf(c.stderr, "%s: %d error(s)\n", f, len(l))
					} else {
						fmt.Fprintln(c.stderr, err)
					}
					continue
				}
				fmt.Fprintf(c.stdout, "%s: ok (%d sites, %d nodes, %d services, %d endpoints, %d datastores)\n",
					f, len(t.Sites), len(t.Nodes), len(t.Services), len(t.Endpoints()), len(t.Datastores))
			}
			if bad > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}
