package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/firebreak/firebreak/internal/demo"
)

type demoFlags struct {
	burn      string
	after     time.Duration
	exitAfter time.Duration
	dataDir   string
	topology  string
	leaseTTL  time.Duration
	wait      time.Duration
	verbose   bool
}

func newDemoCmd(c *cli) *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run three sites on loopback with sample services, then burn one",
		Long: `demo starts three sites on loopback addresses (pangyo 127.0.1.x, gasan
127.0.2.x, ansan 127.0.3.x): one firebreak node per site — the same parts
"firebreak serve" runs: prober, decider, DNS server, API, dashboard and status
page — forming one embedded 3-member etcd cluster, and tiny HTTP backends
playing two companies' services side by side: old-* laid out like the 2022
messenger (login, taxi and ops tools only in pangyo) and new-* made N+1.

It prints the dashboard and status page URLs, a dig command and an operator
token, then offers to burn a site: its node, its etcd member and its
backends die at once. The summary says which services moved and which went
dark, who leads afterwards, and the measured time to re-route (store) and to
change DNS answers.

On a terminal it asks which site to burn; without one, it runs until Ctrl-C,
or burns --burn SITE after --after and exits after --exit-after (scripts,
tests). Ctrl-C stops everything and removes the data (unless --data-dir).`,
		Example: `  # interactive
  firebreak demo

  # scripted: burn pangyo 10 s after start, exit 25 s after the burn
  firebreak demo --burn pangyo --after 10s --exit-after 25s

  # burn wherever the leader runs: watch the leadership move
  firebreak demo --burn leader --after 10s --exit-after 10s

  # keep the etcd data
  firebreak demo --data-dir /tmp/fb-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), c, f, os.Stdin) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.burn, "burn", "", `burn this site without asking (pangyo, gasan, ansan, or "leader": the leader's site)`)
	fl.DurationVar(&f.after, "after", 10*time.Second, "with --burn: how long after start to burn")
	fl.DurationVar(&f.exitAfter, "exit-after", 0, "exit this long after the burn (or after start without --burn); 0 runs until Ctrl-C")
	fl.StringVar(&f.dataDir, "data-dir", "", "keep the nodes' etcd data here (default: a temporary dir removed at exit)")
	fl.StringVarP(&f.topology, "config", "c", "", "a topology to demo instead of the built-in one (nodes need api, dns, peer and client on loopback)")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 3*time.Second, "nodes' liveness and election lease TTL (whole seconds)")
	fl.DurationVar(&f.wait, "wait", 30*time.Second, "how long to measure after a burn")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the nodes' logs (--log-level applies)")
	return cmd
}

// isTTY reports whether in is a terminal (not merely a character device
// such as /dev/null).
func isTTY(in *os.File) bool {
	if in == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS)
	return err == nil
}

func runDemo(ctx context.Context, c *cli, f *demoFlags, in *os.File) error {
	out := c.stdout
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if f.verbose {
		log = c.logger()
	}
	var src []byte
	if f.topology != "" {
		b, err := os.ReadFile(f.topology)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("read topology: %w", err)}
		}
		src = b
	}
	fmt.Fprintln(out, "starting 3 sites (etcd cluster, probers, decider, DNS, API)...")
	began := time.Now()
	d, err := demo.Start(ctx, demo.Config{Topology: src, DataDir: f.dataDir, LeaseTTL: f.leaseTTL, Logger: log})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer func() {
		fmt.Fprintln(out, "stopping: nodes, etcd members, backends...")
		t0 := time.Now()
		if err := d.Close(); err != nil {
			fmt.Fprintln(c.stderr, "demo cleanup:", err)
		}
		if left := d.StillListening(); len(left) > 0 {
			fmt.Fprintln(c.stderr, "demo cleanup: still listening:", strings.Join(left, " "))
			return
		}
		fmt.Fprintf(out, "stopped in %s; checked: nothing is left listening.\n", time.Since(t0).Round(100*time.Millisecond))
	}()
	fmt.Fprintf(out, "ready in %s\n\n", time.Since(began).Round(100*time.Millisecond))
	d.WriteWelcome(out)

	burn := func(site string) {
		fmt.Fprintf(out, "\nburning %s...\n", site)
		res, err := d.Burn(ctx, site, f.wait)
		if err != nil {
			fmt.Fprintln(out, "burn:", err)
			return
		}
		res.WriteSummary(out)
		u := d.URLs("")
		fmt.Fprintf(out, "\n  dashboard now: %s\n  %s\n", u.Dashboard, u.Dig)
	}
	wait := func(dur time.Duration) bool {
		if dur <= 0 {
			<-ctx.Done()
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(dur):
			return true
		}
	}

	switch {
	case f.burn != "":
		if _, ok := d.Sites()[f.burn]; !ok && f.burn != "leader" {
			return &exitError{code: 2, err: fmt.Errorf("--burn %s: no such site", f.burn)}
		}
		fmt.Fprintf(out, "\nburning %s in %s (--burn)\n", f.burn, f.after)
		if !wait(f.after) {
			return nil
		}
		burn(f.burn)
		wait(f.exitAfter)
	case isTTY(in):
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(in)
			for sc.Scan() {
				lines <- strings.TrimSpace(sc.Text())
			}
			close(lines)
		}()
		for {
			fmt.Fprintf(out, "\nburn which site? [%s/leader, restore SITE, q to quit] ", strings.Join(siteList(d), "/"))
			var line string
			var ok bool
			select {
			case <-ctx.Done():
				fmt.Fprintln(out)
				return nil
			case line, ok = <-lines:
			}
			if !ok || line == "q" || line == "quit" {
				return nil
			}
			if site, found := strings.CutPrefix(line, "restore "); found {
				site = strings.TrimSpace(site)
				fmt.Fprintf(out, "restoring %s (backends, node from its data dir)...\n", site)
				if err := d.Restore(ctx, site); err != nil {
					fmt.Fprintln(out, "restore:", err)
				} else {
					fmt.Fprintf(out, "%s is back; leader %s\n", site, d.Leader())
				}
				continue
			}
			if line == "" {
				continue
			}
			burn(line)
		}
	default:
		fmt.Fprintln(out, "\nno terminal: running until Ctrl-C (or use --burn SITE --after 10s)")
		wait(f.exitAfter)
	}
	return nil
}

func siteList(d *demo.Demo) []string {
	var out []string
	for _, s := range d.Topology().Sites {
		out = append(out, s.Name)
	}
	return out
}
