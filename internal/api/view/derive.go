package view

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
)

// Span is a period during which a service had one state.
type Span struct {
	State string    `json:"state"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"` // zero while it lasts
}

// Incident is a period during which a service was not up, derived from the
// verdict history.
type Incident struct {
	// ID is stable across reads: service and start time.
	ID      string `json:"id"`
	Service string `json:"service"`
	// Name is the public name (or the service name when it has none).
	Name string `json:"name"`
	// Worst is the worst state reached: down or degraded.
	Worst   string           `json:"worst"`
	Start   time.Time        `json:"start"`
	End     time.Time        `json:"end,omitzero"`
	Ongoing bool             `json:"ongoing"`
	Updates []IncidentUpdate `json:"updates"`
}

// IncidentUpdate is one step of an incident.
type IncidentUpdate struct {
	Time  time.Time `json:"time"`
	State string    `json:"state"`
	Text  string    `json:"text"`
}

// Duration is how long the incident lasted (until now when ongoing).
func (i Incident) Duration(now time.Time) time.Duration {
	if i.Ongoing {
		return now.Sub(i.Start)
	}
	return i.End.Sub(i.Start)
}

// Day is one day of a service's uptime bar.
type Day struct {
	Date time.Time `json:"date"`
	// State is the worst state of the day: up, degraded, down, or unknown
	// when the day is before the history starts.
	State    string        `json:"state"`
	Down     time.Duration `json:"down"`
	Degraded time.Duration `json:"degraded"`
	// Known is how much of the day is covered by the history.
	Known time.Duration `json:"known"`
	// Uptime is the fraction of the known part of the day the service was
	// not down (0..1); -1 when unknown.
	Uptime float64 `json:"uptime"`
}

// Timelines replays endpoint verdict events and returns, per service,
// its spans of state from since to now, oldest first. A service is down
// while every endpoint is down and degraded while some are. Endpoints with
// no event are taken as up at since.
func Timelines(services []Service, events []decide.Event, since, now time.Time) map[string][]Span {
	n := map[string]int{}
	known := map[string]bool{}
	for _, svc := range services {
		n[svc.Name] = len(svc.Endpoints)
		for _, ep := range svc.Endpoints {
			known[ep.ID] = true
		}
	}
	evs := make([]decide.Event, 0, len(events))
	for _, e := range events {
		if e.Kind == decide.EventEndpoint && known[e.Subject] && !e.Time.After(now) {
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	down := map[string]map[string]bool{}
	out := map[string][]Span{}
	for _, svc := range services {
		down[svc.Name] = map[string]bool{}
		out[svc.Name] = []Span{{State: StateUp, From: since}}
	}
	for _, e := range evs {
		svc, _, _ := strings.Cut(e.Subject, "/")
		if e.To == decide.Down {
			down[svc][e.Subject] = true
		} else {
			delete(down[svc], e.Subject)
		}
		st := StateUp
		switch {
		case n[svc] > 0 && len(down[svc]) == n[svc]:
			st = StateDown
		case len(down[svc]) > 0:
			st = StateDegraded
		}
		spans := out[svc]
		last := &spans[len(spans)-1]
		if last.State == st {
			continue
		}
		at := e.Time
		if at.Before(since) {
			at = since
		}
		if !at.After(last.From) {
			last.State = st // several changes at one instant: keep the last
			if len(spans) > 1 && spans[len(spans)-2].State == st {
				spans = spans[:len(spans)-1]
				spans[len(spans)-1].To = time.Time{}
			}
			out[svc] = spans
			continue
		}
		last.To = at
		out[svc] = append(spans, Span{State: st, From: at})
	}
	return out
}

// Incidents derives incidents from the verdict history, newest first. Only
// services whose name is in include are considered (nil: all).
func Incidents(services []Service, events []decide.Event, since, now time.Time, include map[string]bool) []Incident {
	tl := Timelines(services, events, since, now)
	var out []Incident
	for _, svc := range services {
		if include != nil && !include[svc.Name] {
			continue
		}
		name := svc.Public
		if name == "" {
			name = svc.Name
		}
		var cur *Incident
		for _, sp := range tl[svc.Name] {
			if sp.State == StateUp {
				if cur != nil {
					cur.End, cur.Ongoing = sp.From, false
					cur.Updates = append(cur.Updates, IncidentUpdate{Time: sp.From, State: "resolved",
						Text: fmt.Sprintf("%s is operating normally again after %s.", name, fmtDur(cur.End.Sub(cur.Start)))})
					out = append(out, *cur)
					cur = nil
				}
				continue
			}
			if cur == nil {
				cur = &Incident{ID: fmt.Sprintf("%s-%d", svc.Name, sp.From.Unix()), Service: svc.Name, Name: name,
					Worst: sp.State, Start: sp.From, Ongoing: true}
			}
			if sp.State == StateDown {
				cur.Worst = StateDown
			}
			text := fmt.Sprintf("%s is degraded: some of its sites are unavailable, traffic is served by the others.", name)
			if sp.State == StateDown {
				text = fmt.Sprintf("%s is unavailable in every site.", name)
			}
			cur.Updates = append(cur.Updates, IncidentUpdate{Time: sp.From, State: sp.State, Text: text})
		}
		if cur != nil {
			out = append(out, *cur)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	for i := range out { // newest update first for people
		u := out[i].Updates
		for a, b := 0, len(u)-1; a < b; a, b = a+1, b-1 {
			u[a], u[b] = u[b], u[a]
		}
	}
	return out
}

// Uptime returns, per service, days bars (oldest first) ending with today
// (UTC). Days before since are unknown.
func Uptime(services []Service, events []decide.Event, since, now time.Time, days int) map[string][]Day {
	tl := Timelines(services, events, since, now)
	today := now.UTC().Truncate(24 * time.Hour)
	out := map[string][]Day{}
	for _, svc := range services {
		bars := make([]Day, days)
		for i := range bars {
			start := today.AddDate(0, 0, i-days+1)
			end := start.Add(24 * time.Hour)
			if end.After(now) {
				end = now
			}
			d := Day{Date: start, State: StateUnknown, Uptime: -1}
			from := start
			if from.Before(since) {
				from = since
			}
			if end.After(from) {
				for _, sp := range tl[svc.Name] {
					spEnd := sp.To
					if spEnd.IsZero() {
						spEnd = now
					}
					a, b := maxTime(sp.From, from), minTime(spEnd, end)
					if !b.After(a) {
						continue
					}
					switch sp.State {
					case StateDown:
						d.Down += b.Sub(a)
					case StateDegraded:
						d.Degraded += b.Sub(a)
					}
				}
				d.Known = end.Sub(from)
				d.Uptime = 1 - float64(d.Down)/float64(d.Known)
				switch {
				case d.Down > 0:
					d.State = StateDown
				case d.Degraded > 0:
					d.State = StateDegraded
				default:
					d.State = StateUp
				}
			}
			bars[i] = d
		}
		out[svc.Name] = bars
	}
	return out
}

// UptimePercent is the share of known time not down over bars, in percent;
// -1 when no time is known.
func UptimePercent(bars []Day) float64 {
	var down, known time.Duration
	for _, d := range bars {
		down += d.Down
		known += d.Known
	}
	if known <= 0 {
		return -1
	}
	return 100 * (1 - float64(down)/float64(known))
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		if d%time.Minute == 0 {
			return fmt.Sprintf("%dm", int(d.Minutes()))
		}
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		if d%time.Hour < time.Minute {
			return fmt.Sprintf("%dh", int(d.Hours()))
		}
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// FormatDuration renders d for people (42s, 3m 5s, 2h 10m).
func FormatDuration(d time.Duration) string { return fmtDur(d) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
