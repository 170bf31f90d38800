// Command firebreak keeps services running when a whole data center is lost.
// One binary, one node per site; see README.md and docs/.
//
// main only wires commands together; each command lives in its own file
// (cmd_<name>.go) and the work it does lives in internal/ packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// cli holds what every command shares: output streams and the logger.
type cli struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
}

// logger builds the slog logger selected by --log-level and --log-format.
func (c *cli) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(c.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(c.stderr, opts))
}

func newRoot(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "firebreak",
		Short: "Keep services running when a whole data center is lost",
		Long: `firebreak analyses a declared topology for single-site points of failure,
watches every endpoint from several sites and decides by quorum what is down,
steers traffic away with an authoritative DNS server and an API, fails data
over safely, recovers servers with resumable runbooks, rehearses with drills,
and tells people through a dashboard and a public status page.

Run one node per site; together they survive the loss of any one site.
Start with:  firebreak analyze examples/kakao-2022.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	for _, mk := range commands {
		root.AddCommand(mk(c))
	}
	return root
}

// commands lists every subcommand constructor; each lives in cmd_<name>.go.
var commands = []func(*cli) *cobra.Command{
	newVersionCmd,
	newValidateCmd,
	newAnalyzeCmd,
	newGenTopologyCmd,
	newDrainCmd,
	newUndrainCmd,
	newOverrideCmd,
	newDNSCmd,
	newServeCmd,
	newApplyCmd,
	newStatusCmd,
	newCertsCmd,
	newRunbookCmd,
	newFailoverCmd,
	newDemoCmd,
}

func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the firebreak version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(c.stdout, "firebreak %s\n", version)
			return err
		},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := newRoot(c)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "firebreak:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "firebreak:", err)
	return 2
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
