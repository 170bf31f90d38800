package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

func newApplyCmd(c *cli) *cobra.Command {
	var f storeClientFlags
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Validate a topology and publish it as the store's new version",
		Long: `apply validates FILE exactly as "firebreak validate" does and, when it is
valid, stores it as a new topology revision and makes it current in one
compare-and-swap transaction. Every node picks it up by watch, without
restart. An invalid file is refused with every error as file:line:col and
nothing is written; a file identical to the current version writes nothing.

Exit status: 0 published or unchanged, 1 invalid or store unreachable.`,
		Example: `  firebreak apply prod.yaml
  firebreak apply prod.yaml --dry-run
  firebreak apply prod.yaml --endpoints https://10.0.1.5:2379 --cacert certs/ca.pem --cert certs/ops.pem --key certs/ops-key.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			src, err := os.ReadFile(file)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("read topology: %w", err)}
			}
			t, err := topology.Parse(file, src)
			if err != nil {
				return printTopologyErrors(c, file, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*f.timeout)
			defer cancel()
			cli, err := f.dial(ctx)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer cli.Close()
			if dryRun {
				_, rev, _, err := store.LoadTopology(ctx, cli)
				if err != nil && !errors.Is(err, store.ErrNoTopology) {
					return &exitError{code: 1, err: err}
				}
				fmt.Fprintf(c.stdout, "%s: valid (%d sites, %d services); store is at rev %d; not published (--dry-run)\n", file, len(t.Sites), len(t.Services), rev)
				return nil
			}
			rev, changed, err := store.PublishTopology(ctx, cli, file, src)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !changed {
				fmt.Fprintf(c.stdout, "%s: unchanged, store is at rev %d\n", file, rev)
				return nil
			}
			fmt.Fprintf(c.stdout, "%s: published as topology rev %d\n", file, rev)
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the store's current revision; write nothing")
	return cmd
}
