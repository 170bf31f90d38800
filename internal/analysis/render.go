package analysis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/firebreak/firebreak/internal/topology"
)

// Formats accepted by Write.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatDot  = "dot"
)

// WriteOptions tune the rendering. The zero value renders plain text.
type WriteOptions struct {
	// Color adds ANSI colours to text (callers set it only for a TTY with
	// NO_COLOR unset).
	Color bool
	// Scenario is the scenario highlighted by the dot format (default: the
	// single-site scenario that stops the most services).
	Scenario string
	// MaxNames caps how many service names a text line lists (default 12).
	MaxNames int
}

// Write renders r in format (text, json or dot) to w. t is the topology r
// was computed from (the dot format draws its dependency graph).
func Write(w io.Writer, format string, r *Result, t *topology.Topology, opts WriteOptions) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	switch format {
	case FormatText, "":
		err = writeText(bw, r, opts)
	case FormatJSON:
		err = writeJSON(bw, r)
	case FormatDot:
		err = writeDot(bw, r, t, opts)
	default:
		return fmt.Errorf("unknown format %q (expected text, json or dot)", format)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeJSON streams r as indented JSON, one scenario and one finding at a
// time, so that a result of a million impacts is never held twice in
// memory. The bytes are those json.Encoder with SetIndent("", "  ") and
// SetEscapeHTML(false) would produce for the whole Result.
func writeJSON(w io.Writer, r *Result) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var werr error
	put := func(s string) {
		if werr == nil {
			_, werr = io.WriteString(w, s)
		}
	}
	value := func(v any, prefix string) {
		buf.Reset()
		enc.SetIndent(prefix, "  ")
		if err := enc.Encode(v); err != nil {
			if werr == nil {
				werr = fmt.Errorf("encode analysis: %w", err)
			}
			return
		}
		if werr == nil {
			_, werr = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		}
	}
	field := func(name string, v any) {
		put("  " + strconv.Quote(name) + ": ")
		value(v, "  ")
		put(",\n")
	}
	array := func(name string, n int, elem func(i int) any) {
		put("  " + strconv.Quote(name) + ": [")
		if n == 0 {
			put("]")
			return
		}
		put("\n")
		for i := 0; i < n; i++ {
			put("    ")
			value(elem(i), "    ")
			if i < n-1 {
				put(",")
			}
			put("\n")
		}
		put("  ]")
	}
	put("{\n")
	field("schema", r.Schema)
	field("source", r.Source)
	if r.Name != "" {
		field("name", r.Name)
	}
	field("sites", r.Sites)
	field("services", r.Services)
	field("datastores", r.Datastores)
	field("nodes", r.Nodes)
	if r.Scenarios == nil {
		put(`  "scenarios": null`)
	} else {
		array("scenarios", len(r.Scenarios), func(i int) any { return &r.Scenarios[i] })
	}
	put(",\n")
	if r.Findings == nil {
		put(`  "findings": null`)
	} else {
		array("findings", len(r.Findings), func(i int) any { return &r.Findings[i] })
	}
	put(",\n")
	put(`  "counts": `)
	value(r.Counts, "  ")
	put("\n}\n")
	return werr
}

// ANSI colours by severity.
var sevColor = [...]string{"\x1b[2m", "\x1b[36m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m"}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
)

type textWriter struct {
	w     io.Writer
	color bool
	max   int
	err   error
}

func (tw *textWriter) printf(format string, args ...any) {
	if tw.err == nil {
		_, tw.err = fmt.Fprintf(tw.w, format, args...)
	}
}

func (tw *textWriter) bold(s string) string {
	if !tw.color {
		return s
	}
	return ansiBold + s + ansiReset
}

func (tw *textWriter) sev(s Severity) string {
	name := fmt.Sprintf("%-8s", strings.ToUpper(s.String()))
	if !tw.color {
		return name
	}
	return sevColor[s] + name + ansiReset
}

// names lists up to tw.max names, then "and N more".
func (tw *textWriter) names(list []string) string {
	if len(list) <= tw.max {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:tw.max], ", ") + " and " + strconv.Itoa(len(list)-tw.max) + " more"
}

func impactNames(s *Scenario, st Status) []string {
	var out []string
	for _, si := range s.Services {
		if si.Status == st {
			out = append(out, si.Service)
		}
	}
	return out
}

// summaryLine says in one sentence what a scenario does.
func (tw *textWriter) summaryLine(s *Scenario) string {
	var parts []string
	if s.Down > 0 {
		parts = append(parts, fmt.Sprintf("stops %d of %d services (%s)", s.Down, s.Total, tw.names(impactNames(s, Down))))
	} else {
		parts = append(parts, "stops no service")
	}
	if s.Degraded > 0 {
		parts = append(parts, fmt.Sprintf("degrades %d (%s)", s.Degraded, tw.names(impactNames(s, Degraded))))
	}
	var lost, restore, fo []string
	for _, d := range s.Datastores {
		switch {
		case d.Status == Failover:
			fo = append(fo, d.Datastore)
		case s.Kind == KindCompromised && !d.DataLoss:
			restore = append(restore, d.Datastore)
		default:
			lost = append(lost, d.Datastore)
		}
	}
	if len(lost) > 0 {
		if s.Kind == KindCompromised {
			parts = append(parts, fmt.Sprintf("can destroy %d datastore(s) for good: no immutable backup (%s)", len(lost), tw.names(lost)))
		} else {
			parts = append(parts, fmt.Sprintf("loses %d datastore(s) with no replica left (%s)", len(lost), tw.names(lost)))
		}
	}
	if len(restore) > 0 {
		parts = append(parts, fmt.Sprintf("needs %d datastore(s) restored from immutable backups (%s)", len(restore), tw.names(restore)))
	}
	if len(fo) > 0 {
		parts = append(parts, fmt.Sprintf("fails %d datastore(s) over (%s)", len(fo), tw.names(fo)))
	}
	cp := s.ControlPlane
	if cp.Nodes > 0 && !cp.Quorum {
		parts = append(parts, fmt.Sprintf("leaves firebreak without quorum (%d of %d nodes)", cp.Surviving, cp.Nodes))
	}
	return strings.Join(parts, "; ")
}

func describe(s *Scenario) string {
	switch s.Kind {
	case KindSite:
		return "site " + s.Lost[0] + " lost"
	case KindSitePair:
		return "sites " + strings.Join(s.Lost, " and ") + " lost together"
	case KindRack:
		return "rack " + s.Lost[0] + " lost"
	case KindCompromised:
		return "site " + s.Lost[0] + " compromised (an attacker holds its credentials)"
	}
	return s.ID
}

func writeText(w io.Writer, r *Result, opts WriteOptions) error {
	tw := &textWriter{w: w, color: opts.Color, max: opts.MaxNames}
	if tw.max <= 0 {
		tw.max = 12
	}
	title := r.Source
	if r.Name != "" {
		title += " (" + r.Name + ")"
	}
	tw.printf("%s\n", tw.bold("firebreak analysis of "+title))
	tw.printf("%d sites, %d services, %d datastores, %d firebreak nodes; %d scenarios\n\n",
		len(r.Sites), r.Services, r.Datastores, r.Nodes, len(r.Scenarios))

	byScenario := map[string][]*Finding{}
	for i := range r.Findings {
		f := &r.Findings[i]
		byScenario[f.Scenario] = append(byScenario[f.Scenario], f)
	}

	// Summary: every single site, the worst pair, racks.
	tw.printf("%s\n", tw.bold("Summary"))
	var worstPair *Scenario
	rackStops := 0
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		switch s.Kind {
		case KindSite:
			tw.printf("  losing %s %s\n", s.Lost[0], tw.summaryLine(s))
		case KindSitePair:
			if worstPair == nil || s.Down > worstPair.Down || (s.Down == worstPair.Down && s.Degraded > worstPair.Degraded) {
				worstPair = s
			}
		case KindRack:
			if s.Down > 0 {
				rackStops++
			}
		}
	}
	if worstPair != nil {
		tw.printf("  worst site pair: losing %s %s\n", strings.Join(worstPair.Lost, " and "), tw.summaryLine(worstPair))
	}
	if n := countKind(r, KindRack); n > 0 {
		tw.printf("  racks: %d of %d declared racks stop a service when lost\n", rackStops, n)
	}
	tw.printf("  findings: %d critical, %d high, %d medium, %d low, %d info\n",
		r.Counts["critical"], r.Counts["high"], r.Counts["medium"], r.Counts["low"], r.Counts["info"])

	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		fs := byScenario[s.ID]
		if len(fs) == 0 && (s.Kind == KindSitePair || (s.Down == 0 && s.Degraded == 0 && len(s.Datastores) == 0)) {
			continue
		}
		tw.printf("\n%s\n", tw.bold("== "+describe(s)+" =="))
		tw.printf("  %s\n", tw.summaryLine(s))
		if len(s.Customers) > 0 {
			var cs []string
			for _, c := range s.Customers {
				cs = append(cs, fmt.Sprintf("%s (%s, %d customers)", c.Class, c.Status, c.Count))
			}
			tw.printf("  customers: %s\n", tw.names(cs))
		}
		for _, d := range s.Datastores {
			tw.printf("  datastore %s: %s: %s\n", d.Datastore, d.Status, d.Reason)
		}
		if s.Kind == KindSite && s.ControlPlane.Nodes > 0 {
			q := "quorum kept"
			if !s.ControlPlane.Quorum {
				q = "NO QUORUM"
			}
			tw.printf("  firebreak: %d of %d nodes left, %s\n", s.ControlPlane.Surviving, s.ControlPlane.Nodes, q)
		}
		tw.findings(fs)
	}
	if fs := byScenario[""]; len(fs) > 0 {
		tw.printf("\n%s\n", tw.bold("== the topology as a whole =="))
		tw.findings(fs)
	}
	return tw.err
}

func (tw *textWriter) findings(fs []*Finding) {
	for _, f := range fs {
		tw.printf("  %s %s\n", tw.sev(f.Severity), f.ID)
		tw.printf("           %s\n", f.Message)
		if len(f.Chain) > 0 {
			tw.printf("           chain: %s\n", ChainString(f.Chain))
		}
		tw.printf("           fix:   %s\n", f.Fix)
	}
}

func countKind(r *Result, kind string) int {
	n := 0
	for i := range r.Scenarios {
		if r.Scenarios[i].Kind == kind {
			n++
		}
	}
	return n
}

// worstSite is the single-site scenario that stops the most services.
func worstSite(r *Result) *Scenario {
	var w *Scenario
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if s.Kind != KindSite {
			continue
		}
		if w == nil || s.Down > w.Down || (s.Down == w.Down && s.Degraded > w.Degraded) {
			w = s
		}
	}
	return w
}

// writeDot draws the dependency graph with the chosen scenario's blast
// radius: down nodes red, degraded orange, failing-over datastores yellow,
// and the edges that carry the failure in red.
func writeDot(w io.Writer, r *Result, t *topology.Topology, opts WriteOptions) error {
	if t == nil {
		return fmt.Errorf("dot format needs the topology")
	}
	var s *Scenario
	if opts.Scenario != "" {
		if s = r.Scenario(opts.Scenario); s == nil {
			return fmt.Errorf("unknown scenario %q (expected an ID such as site:%s)", opts.Scenario, firstOr(r.Sites, "SITE"))
		}
	} else {
		s = worstSite(r)
	}
	status := map[string]Status{}
	cause := map[[2]string]bool{}
	label := "no scenario"
	if s != nil {
		label = describe(s) + ": " + strconv.Itoa(s.Down) + " down, " + strconv.Itoa(s.Degraded) + " degraded"
		for _, si := range s.Services {
			status[si.Service] = si.Status
			if len(si.Chain) > 1 {
				cause[[2]string{si.Chain[0].Name, si.Chain[1].Name}] = true
			}
		}
		for _, d := range s.Datastores {
			status[d.Datastore] = d.Status
		}
	}
	tw := &textWriter{w: w}
	name := r.Name
	if name == "" {
		name = r.Source
	}
	tw.printf("digraph firebreak {\n")
	tw.printf("  graph [rankdir=LR, labelloc=t, fontname=Helvetica, label=%s];\n", strconv.Quote(name+": "+label))
	tw.printf("  node [fontname=Helvetica, fontsize=10, style=filled, fillcolor=white];\n")
	tw.printf("  edge [fontname=Helvetica, fontsize=9];\n")
	fill := func(n string) string {
		switch status[n] {
		case Down:
			return `fillcolor="#f4a6a6", color="#c00000", penwidth=2`
		case Degraded:
			return `fillcolor="#ffd59a", color="#d07000"`
		case Failover:
			return `fillcolor="#fff3a0", color="#a08000"`
		}
		return `fillcolor=white`
	}
	for _, svc := range t.Services {
		sites := endpointSites(svc)
		shape := "box"
		if svc.Kind == topology.KindOps {
			shape = "component"
		}
		lbl := fmt.Sprintf("%s\ntier %d, %s", svc.Name, svc.Tier, strings.Join(sites, "+"))
		tw.printf("  %s [shape=%s, label=%s, %s];\n", strconv.Quote(svc.Name), shape, strconv.Quote(lbl), fill(svc.Name))
	}
	for _, d := range t.Datastores {
		copies := []string{d.Primary + "*"}
		for _, rep := range d.Replicas {
			copies = append(copies, rep.Site+"("+rep.Mode+")")
		}
		lbl := fmt.Sprintf("%s\n%s: %s", d.Name, d.Engine, strings.Join(copies, " "))
		tw.printf("  %s [shape=cylinder, label=%s, %s];\n", strconv.Quote(d.Name), strconv.Quote(lbl), fill(d.Name))
	}
	for _, svc := range t.Services {
		for _, dep := range svc.DependsOn {
			var attrs []string
			if !dep.Hard {
				attrs = append(attrs, "style=dashed")
			}
			if cause[[2]string{svc.Name, dep.Target}] {
				attrs = append(attrs, `color="#c00000"`, "penwidth=2")
			}
			a := ""
			if len(attrs) > 0 {
				a = " [" + strings.Join(attrs, ", ") + "]"
			}
			tw.printf("  %s -> %s%s;\n", strconv.Quote(svc.Name), strconv.Quote(dep.Target), a)
		}
	}
	tw.printf("}\n")
	return tw.err
}

func endpointSites(s *topology.Service) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range s.Endpoints {
		if !seen[e.Site] {
			seen[e.Site] = true
			out = append(out, e.Site)
		}
	}
	sort.Strings(out)
	return out
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
