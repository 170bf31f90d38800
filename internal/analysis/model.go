package analysis

import (
	"fmt"
	"strings"
)

// SchemaVersion names the JSON schema of Result; it changes only when a
// field is removed or changes meaning (adding fields keeps it).
const SchemaVersion = "firebreak.analysis/v1"

// Severity ranks a finding. The zero value is Info.
type Severity int

// Severities, from least to most severe.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the lower-case name: info, low, medium, high or critical.
func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses a severity name (case-insensitive).
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("unknown severity %q (expected one of: %s)", name, strings.Join(severityNames[:], ", "))
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Status is what a scenario does to a service or datastore. It encodes to
// JSON as its name.
type Status uint8

// Statuses. Up entries are left out of scenario results.
const (
	Up       Status = iota
	Degraded        // running, below peak capacity or missing a soft dependency
	Down            // stopped
	// Failover: a datastore whose primary is lost but which has a replica
	// in a surviving site; it is usable after a promotion.
	Failover
)

var statusNames = [...]string{"up", "degraded", "down", "failover"}

// String returns up, degraded, down or failover.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText encodes the status as its name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a status name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if string(b) == n {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q (expected one of: %s)", b, strings.Join(statusNames[:], ", "))
}

// LinkType says whether a chain link is a service or a datastore. It
// encodes to JSON as "service" or "datastore".
type LinkType uint8

// Link types.
const (
	LinkService LinkType = iota
	LinkDatastore
)

// String returns "service" or "datastore".
func (t LinkType) String() string {
	if t == LinkDatastore {
		return "datastore"
	}
	return "service"
}

// MarshalText encodes the type as its name.
func (t LinkType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes "service" or "datastore".
func (t *LinkType) UnmarshalText(b []byte) error {
	switch string(b) {
	case "service":
		*t = LinkService
	case "datastore":
		*t = LinkDatastore
	default:
		return fmt.Errorf("unknown link type %q (expected service or datastore)", b)
	}
	return nil
}

// Scenario kinds.
const (
	KindSite        = "site"        // one site lost
	KindSitePair    = "site-pair"   // two sites lost at once
	KindRack        = "rack"        // one declared rack lost
	KindCompromised = "compromised" // an attacker holds one site's credentials
)

// Result is the outcome of analysing one topology. It is a plain value,
// safe to share read-only, and encodes to the documented JSON schema.
type Result struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// Source is the topology file; Name its declared name.
	Source string `json:"source"`
	Name   string `json:"name,omitempty"`
	// Sites are the topology's sites in file order.
	Sites []string `json:"sites"`
	// Services, Datastores and Nodes count what the topology declares.
	Services   int `json:"services"`
	Datastores int `json:"datastores"`
	Nodes      int `json:"nodes"`
	// Scenarios are every evaluated scenario: single sites, site pairs,
	// racks, then compromised sites, each in file order of the sites.
	Scenarios []Scenario `json:"scenarios"`
	// Findings are sorted by severity (most severe first), then ID.
	Findings []Finding `json:"findings"`
	// Counts maps a severity name to the number of findings with it.
	Counts map[string]int `json:"counts"`
}

// Scenario is one failure and its consequences.
type Scenario struct {
	// ID is stable: "site:pangyo", "site-pair:pangyo+gasan",
	// "rack:pangyo/r1", "compromised:pangyo".
	ID string `json:"id"`
	// Kind is one of KindSite, KindSitePair, KindRack, KindCompromised.
	Kind string `json:"kind"`
	// Lost are the sites lost (for a rack: "site/rack"; for compromised:
	// the site whose credentials are held).
	Lost []string `json:"lost"`
	// Down and Degraded count affected services; Total is every service.
	Down     int `json:"down"`
	Degraded int `json:"degraded"`
	Total    int `json:"total"`
	// Services lists the services that are down or degraded, in file order.
	Services []ServiceImpact `json:"services,omitempty"`
	// Datastores lists datastores that are down, failing over or (for a
	// compromised site) lost, in file order.
	Datastores []DatastoreImpact `json:"datastores,omitempty"`
	// ControlPlane is what remains of firebreak's own nodes.
	ControlPlane ControlPlane `json:"controlPlane"`
	// Customers are the customer classes that lose or degrade a service.
	Customers []CustomerImpact `json:"customers,omitempty"`
}

// ServiceImpact is one service that a scenario stops or degrades.
type ServiceImpact struct {
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Tier    int    `json:"tier"`
	Status  Status `json:"status"`
	// Chain explains the status: the service first, then each dependency
	// that caused the previous link's status, down to the root cause,
	// which carries a reason.
	Chain []Link `json:"chain"`
	// Capacity left after the loss and the declared peak need (0: none
	// declared).
	Capacity int `json:"capacity"`
	Peak     int `json:"peak"`
}

// Link is one step of a dependency chain.
type Link struct {
	// Name is a service or datastore.
	Name string `json:"name"`
	// Type is LinkService or LinkDatastore.
	Type LinkType `json:"type"`
	// Hard is whether the previous link depends on this one hard (always
	// true for the first link).
	Hard bool `json:"hard"`
	// Reason is set on the root cause: why it is down or degraded.
	Reason string `json:"reason,omitempty"`
}

// DatastoreImpact is what a scenario does to one datastore.
type DatastoreImpact struct {
	Datastore string `json:"datastore"`
	Status    Status `json:"status"`
	// Promote is the site of the replica to promote (Failover status).
	Promote string `json:"promote,omitempty"`
	// DataLoss is true when the promoted replica is asynchronous (up to
	// its lag is lost) or, for a compromised site, when no immutable
	// backup is left.
	DataLoss bool `json:"dataLoss,omitempty"`
	// Reason explains the status in words.
	Reason string `json:"reason"`
}

// ControlPlane is firebreak's own nodes in a scenario.
type ControlPlane struct {
	Nodes     int  `json:"nodes"`
	Surviving int  `json:"surviving"`
	Quorum    bool `json:"quorum"`
}

// CustomerImpact is a customer class hit by a scenario.
type CustomerImpact struct {
	Class  string `json:"class"`
	Status Status `json:"status"`
	Count  int    `json:"count,omitempty"`
	// Services are the class's services that are down or degraded.
	Services []string `json:"services"`
}

// Finding is one problem, with a stable ID derived from its rule and
// subject (never from ordering), so CI and suppressions can refer to it.
type Finding struct {
	// ID is "<rule>/<subject>[/<site>...]", e.g.
	// "FB-SPOF-SERVICE/login/pangyo".
	ID string `json:"id"`
	// Rule is the rule that produced it, e.g. "FB-SPOF-SERVICE".
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Subject is the service, datastore, site or node set concerned.
	Subject string `json:"subject"`
	// Scenario is the ID of the scenario that shows it; empty for a
	// finding about the topology as a whole.
	Scenario string `json:"scenario,omitempty"`
	// Message says what is wrong in one sentence.
	Message string `json:"message"`
	// Chain explains it (dependency findings only).
	Chain []Link `json:"chain,omitempty"`
	// Fix is a concrete change that removes the finding.
	Fix string `json:"fix"`
}

// ChainString renders a chain as
// "taxi -> login -> accounts(primary pangyo, no replica outside pangyo)";
// soft links are written "~>".
func ChainString(chain []Link) string {
	var b strings.Builder
	for i, l := range chain {
		if i > 0 {
			if l.Hard {
				b.WriteString(" -> ")
			} else {
				b.WriteString(" ~> ")
			}
		}
		b.WriteString(l.Name)
		if l.Reason != "" {
			b.WriteString("(")
			b.WriteString(l.Reason)
			b.WriteString(")")
		}
	}
	return b.String()
}

// Max returns the highest severity among the findings, and false when
// there are none.
func (r *Result) Max() (Severity, bool) {
	if len(r.Findings) == 0 {
		return Info, false
	}
	m := Info
	for _, f := range r.Findings {
		if f.Severity > m {
			m = f.Severity
		}
	}
	return m, true
}

// AtLeast returns the findings whose severity is at least s.
func (r *Result) AtLeast(s Severity) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity >= s {
			out = append(out, f)
		}
	}
	return out
}

// Scenario returns the scenario with the given ID, or nil.
func (r *Result) Scenario(id string) *Scenario {
	for i := range r.Scenarios {
		if r.Scenarios[i].ID == id {
			return &r.Scenarios[i]
		}
	}
	return nil
}
