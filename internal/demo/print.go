package demo

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteWelcome prints where to look: the dashboard, the status page, a dig
// command, the operator token and the sites.
func (d *Demo) WriteWelcome(w io.Writer) {
	u := d.URLs("gasan")
	fmt.Fprintf(w, "firebreak demo: 3 sites on loopback, one node each, one embedded etcd cluster\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  site\tnode\tdashboard / API\tDNS\tetcd member")
	for _, n := range d.top.Nodes {
		fmt.Fprintf(tw, "  %s\t%s\thttp://%s/\t%s\t%s\n", n.Site, n.Name, n.API, n.DNS, n.Client)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n  dashboard     %s   (viewers need no token)\n", u.Dashboard)
	fmt.Fprintf(w, "  status page   %s\n", u.Status)
	fmt.Fprintf(w, "  DNS           %s\n", u.Dig)
	fmt.Fprintf(w, "                %s\n", strings.Replace(u.Dig, "new-messenger.", "old-login.", 1))
	fmt.Fprintf(w, "  operator token (sign in on the dashboard to drain):\n                %s\n", d.Token)
	fmt.Fprintf(w, "  leader        %s\n", d.Leader())
	fmt.Fprintf(w, "\nTwo companies share the sites: old-* is laid out like 2022 (login, taxi and\n"+
		"ops tools only in pangyo), new-* is N+1 on sites. Burn pangyo and watch.\n")
	if !d.tempDir {
		fmt.Fprintf(w, "data dir: %s (kept)\n", d.dir)
	}
}

// WriteSummary prints what a burn did and how long it took.
func (b *Burned) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "\n=== %s burnt: node, etcd member and backends died at once ===\n", b.Site)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  service\tbefore\tafter\toutcome\trouting changed\tDNS answers changed")
	var moved, dark []string
	var worstRoute, worstDNS time.Duration
	for _, o := range b.Services {
		outcome := "still routed to " + b.Site + " (not seen to change)"
		switch {
		case o.Moved && o.BlockedBy != "":
			outcome = "moved, but DOWN: needs " + o.BlockedBy + " (dark)"
			dark = append(dark, o.Service)
		case o.Moved && o.Peak > 0 && o.CapacityLeft < o.Peak:
			outcome = fmt.Sprintf("moved, DEGRADED: capacity %d of peak %d", o.CapacityLeft, o.Peak)
			moved = append(moved, o.Service)
		case o.Moved:
			outcome = "moved"
			moved = append(moved, o.Service)
		case o.Dark:
			outcome = "DARK: nowhere to go (fail-open, alarm)"
			dark = append(dark, o.Service)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", o.Service, strings.Join(o.Before, ","), orDash(strings.Join(o.After, ",")),
			outcome, dur(o.RoutedIn), dur(o.DNSIn))
		if o.Moved {
			worstRoute = max(worstRoute, o.RoutedIn)
			worstDNS = max(worstDNS, o.DNSIn)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(moved) > 0 {
		fmt.Fprintf(w, "  moved to surviving sites: %s\n", strings.Join(moved, ", "))
		fmt.Fprintf(w, "  detection + re-routing (store): %s (slowest service)\n", dur(worstRoute))
		fmt.Fprintf(w, "  DNS answers changed on %s: %s (slowest service)\n", b.DNSServer, dur(worstDNS))
	}
	if len(dark) > 0 {
		fmt.Fprintf(w, "  went dark: %s — every endpoint (or a hard dependency's) was in %s.\n"+
			"  firebreak cannot invent capacity: it keeps the last targets (fail-open) and raises\n"+
			"  an alarm. This is the 2022 layout; \"firebreak analyze\" says so before the fire.\n", strings.Join(dark, ", "), b.Site)
	}
	switch {
	case b.LeaderBefore == "":
		fmt.Fprintf(w, "  leader: none before, %s after\n", orDash(b.LeaderAfter))
	case b.LeaderIn > 0:
		fmt.Fprintf(w, "  leader: %s burnt with the site; %s took over after %s\n", b.LeaderBefore, orDash(b.LeaderAfter), dur(b.LeaderIn))
	case b.LeaderAfter == "":
		fmt.Fprintf(w, "  leader: %s before; no leader seen within the wait\n", b.LeaderBefore)
	default:
		fmt.Fprintf(w, "  leader: %s, unchanged (it was not in %s)\n", b.LeaderAfter, b.Site)
	}
	fmt.Fprintln(w, "  (times from the burn; routing read through a surviving node, DNS asked over UDP)")
	if b.HoldDownLeft > 0 {
		fmt.Fprintf(w, "  note: routes had changed just before the burn; the decider's hold-down kept them\n"+
			"  for up to %s more, so these times include dampening (burn later to see detection alone)\n", dur(b.HoldDownLeft))
	}
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
