package ui

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
)

// statusModel is the public status page's content.
type statusModel struct {
	Title     string
	Node      string
	Generated time.Time
	Stale     bool
	StaleAt   time.Time
	// Overall is up, degraded or down; Headline says it for people.
	Overall   string
	Headline  string
	Services  []statusService
	Ongoing   []view.Incident
	Past      []view.Incident
	Days      int
	HasPublic bool
}

type statusService struct {
	ID          string
	Name        string
	Description string
	State       string
	Since       time.Time
	Bars        []view.Day
	Uptime      float64
}

func (u *UI) statusModel(ctx context.Context) (*statusModel, error) {
	now := u.opt.Now()
	u.mu.Lock()
	if c := u.cached; c != nil && now.Sub(c.Generated) < u.opt.CacheFor {
		u.mu.Unlock()
		return c, nil
	}
	u.mu.Unlock()

	snap, err := u.state.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	since := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -u.opt.Days+1)
	hist, err := u.state.History(ctx, since)
	if err != nil {
		return nil, err
	}
	topo := snap.Services
	// Data before the oldest thing the control plane knows is unknown, not
	// "up": the bars must not claim uptime nobody measured.
	known := now
	if len(hist) > 0 && hist[0].Time.Before(known) {
		known = hist[0].Time
	}
	for _, n := range snap.Nodes {
		if !n.Started.IsZero() && n.Started.Before(known) {
			known = n.Started
		}
	}
	if known.Before(since) {
		known = since
	}
	m := &statusModel{Title: u.opt.StatusTitle, Node: snap.Node, Generated: now, Stale: snap.Stale, StaleAt: snap.StaleSince, Days: u.opt.Days}
	if m.Title == "" {
		m.Title = "Service status"
		if snap.Topology.Name != "" {
			m.Title = snap.Topology.Name + " status"
		}
	}
	include := map[string]bool{}
	for _, s := range snap.Services {
		if s.Public != "" {
			include[s.Name] = true
		}
	}
	m.HasPublic = len(include) > 0
	bars := view.Uptime(topo, hist, known, now, u.opt.Days)
	for _, s := range snap.Services {
		if !include[s.Name] {
			continue
		}
		ss := statusService{ID: s.Name, Name: s.Public, Description: s.Description, State: s.State, Bars: bars[s.Name]}
		ss.Uptime = view.UptimePercent(ss.Bars)
		m.Services = append(m.Services, ss)
	}
	for _, inc := range view.Incidents(topo, hist, known, now, include) {
		if inc.Ongoing {
			m.Ongoing = append(m.Ongoing, inc)
		} else if len(m.Past) < 30 {
			m.Past = append(m.Past, inc)
		}
	}
	m.Overall, m.Headline = view.StateUp, "All systems operational"
	for _, s := range m.Services {
		switch {
		case s.State == view.StateDown:
			m.Overall, m.Headline = view.StateDown, "Major outage"
		case s.State == view.StateDegraded && m.Overall == view.StateUp:
			m.Overall, m.Headline = view.StateDegraded, "Some services are degraded"
		}
	}
	u.mu.Lock()
	u.cached = m
	u.mu.Unlock()
	return m, nil
}

func (u *UI) status(w http.ResponseWriter, r *http.Request) {
	m, err := u.statusModel(r.Context())
	if err != nil {
		http.Error(w, "status unavailable on this node: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	u.render(w, "status.html", m)
}

func (u *UI) statusLive(w http.ResponseWriter, r *http.Request) {
	m, err := u.statusModel(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	u.render(w, "statuslive", m)
}

// Summary is the JSON summary at /status/summary.json, shaped like the
// summaries of common status-page services (page, status with an
// indicator, components, incidents).
type Summary struct {
	Page struct {
		Name      string    `json:"name"`
		URL       string    `json:"url"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"page"`
	Status struct {
		// Indicator is none, minor, major or critical.
		Indicator   string `json:"indicator"`
		Description string `json:"description"`
	} `json:"status"`
	Components []SummaryComponent `json:"components"`
	Incidents  []SummaryIncident  `json:"incidents"`
	// Stale is true when the answering node has lost its store quorum.
	Stale      bool      `json:"stale"`
	StaleSince time.Time `json:"stale_since,omitzero"`
	Node       string    `json:"node"`
}

// SummaryComponent is one public service.
type SummaryComponent struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Status is operational, degraded_performance, partial_outage or
	// major_outage.
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
	// Uptime is the percentage of known time not down over the bars'
	// period (null when unknown).
	Uptime *float64 `json:"uptime_90d"`
}

// SummaryIncident is one incident.
type SummaryIncident struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Status     string                  `json:"status"` // investigating or resolved
	Impact     string                  `json:"impact"` // minor or major
	CreatedAt  time.Time               `json:"created_at"`
	ResolvedAt *time.Time              `json:"resolved_at"`
	Components []string                `json:"components"`
	Updates    []SummaryIncidentUpdate `json:"incident_updates"`
}

// SummaryIncidentUpdate is one step of an incident.
type SummaryIncidentUpdate struct {
	Status    string    `json:"status"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// baseURL is the scheme and host the request came to, for absolute links
// in feeds (every node serves them under its own address).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" || strings.ContainsAny(host, "/\\ \"<>") {
		host = "localhost"
	}
	return scheme + "://" + host
}

func componentStatus(state string) string {
	switch state {
	case view.StateDown:
		return "major_outage"
	case view.StateDegraded:
		return "degraded_performance"
	case view.StateUp:
		return "operational"
	}
	return "unknown"
}

func summaryIncident(inc view.Incident) SummaryIncident {
	si := SummaryIncident{ID: inc.ID, Name: incidentTitle(inc), Status: "investigating", Impact: "minor", CreatedAt: inc.Start,
		Components: []string{inc.Service}, Updates: []SummaryIncidentUpdate{}}
	if inc.Worst == view.StateDown {
		si.Impact = "major"
	}
	if !inc.Ongoing {
		si.Status = "resolved"
		end := inc.End
		si.ResolvedAt = &end
	}
	for _, up := range inc.Updates {
		st := "investigating"
		if up.State == "resolved" {
			st = "resolved"
		}
		si.Updates = append(si.Updates, SummaryIncidentUpdate{Status: st, Body: up.Text, CreatedAt: up.Time})
	}
	return si
}

func incidentTitle(inc view.Incident) string {
	if inc.Worst == view.StateDown {
		return inc.Name + " unavailable"
	}
	return inc.Name + " degraded"
}

func (u *UI) summary(w http.ResponseWriter, r *http.Request) {
	m, err := u.statusModel(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var s Summary
	s.Page.Name, s.Page.URL, s.Page.UpdatedAt = m.Title, baseURL(r)+"/status", m.Generated.UTC()
	s.Status.Indicator, s.Status.Description = "none", m.Headline
	switch m.Overall {
	case view.StateDown:
		s.Status.Indicator = "major"
	case view.StateDegraded:
		s.Status.Indicator = "minor"
	}
	s.Stale, s.StaleSince, s.Node = m.Stale, m.StaleAt, m.Node
	s.Components, s.Incidents = []SummaryComponent{}, []SummaryIncident{}
	for _, sv := range m.Services {
		c := SummaryComponent{ID: sv.ID, Name: sv.Name, Description: sv.Description, Status: componentStatus(sv.State), UpdatedAt: m.Generated.UTC()}
		if sv.Uptime >= 0 {
			up := sv.Uptime
			c.Uptime = &up
		}
		s.Components = append(s.Components, c)
	}
	for _, inc := range append(append([]view.Incident{}, m.Ongoing...), m.Past...) {
		s.Incidents = append(s.Incidents, summaryIncident(inc))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s)
}

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Link    []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title   string   `xml:"title"`
	ID      string   `xml:"id"`
	Updated string   `xml:"updated"`
	Link    atomLink `xml:"link"`
	Content struct {
		Type string `xml:"type,attr"`
		Body string `xml:",chardata"`
	} `xml:"content"`
}

func (u *UI) feed(w http.ResponseWriter, r *http.Request) {
	m, err := u.statusModel(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	base := baseURL(r)
	f := atomFeed{Title: m.Title, ID: "urn:firebreak:status", Updated: m.Generated.UTC().Format(time.RFC3339),
		Link: []atomLink{{Href: base + "/status"}, {Href: base + "/status/feed.atom", Rel: "self"}}, Author: atomAuthor{Name: m.Title}}
	for _, inc := range append(append([]view.Incident{}, m.Ongoing...), m.Past...) {
		e := atomEntry{ID: "urn:firebreak:incident:" + inc.ID, Link: atomLink{Href: base + "/status#" + inc.ID}}
		e.Title = incidentTitle(inc)
		updated := inc.Start
		if !inc.Ongoing {
			e.Title += " (resolved)"
			updated = inc.End
		}
		e.Updated = updated.UTC().Format(time.RFC3339)
		e.Content.Type = "text"
		for _, up := range inc.Updates {
			e.Content.Body += fmt.Sprintf("%s — %s\n", up.Time.UTC().Format("2006-01-02 15:04:05 UTC"), up.Text)
		}
		f.Entries = append(f.Entries, e)
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	_ = enc.Encode(f)
}
