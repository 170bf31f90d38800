package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide"
)

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			d := u.opt.Now().Sub(t)
			if d < time.Second {
				return "just now"
			}
			return view.FormatDuration(d) + " ago"
		},
		"until": func(t time.Time) string {
			d := t.Sub(u.opt.Now())
			if d <= 0 {
				return "expired"
			}
			return "in " + view.FormatDuration(d)
		},
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("15:04:05")
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"date": func(t time.Time) string { return t.UTC().Format("Jan 2") },
		"dur":  view.FormatDuration,
		"incDur": func(inc view.Incident) string {
			return view.FormatDuration(inc.Duration(u.opt.Now()))
		},
		"stateLabel": stateLabel,
		"pct": func(f float64) string {
			if f < 0 {
				return "no data"
			}
			if f >= 99.995 {
				return "100%"
			}
			return fmt.Sprintf("%.2f%%", math.Floor(f*100)/100)
		},
		"barTitle": func(d view.Day) string {
			day := d.Date.UTC().Format("Mon 2 Jan 2006")
			switch d.State {
			case view.StateUnknown:
				return day + ": no data"
			case view.StateUp:
				return day + ": no incidents"
			}
			parts := []string{}
			if d.Down > 0 {
				parts = append(parts, "unavailable "+view.FormatDuration(d.Down))
			}
			if d.Degraded > 0 {
				parts = append(parts, "degraded "+view.FormatDuration(d.Degraded))
			}
			return day + ": " + strings.Join(parts, ", ")
		},
		"bytes": func(n int64) string {
			switch {
			case n >= 1<<30:
				return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
			case n >= 1<<20:
				return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
			case n >= 1<<10:
				return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
			}
			return fmt.Sprintf("%d B", n)
		},
		"eventClass": func(e decide.Event) string {
			switch {
			case e.To == decide.Down || e.To == "raised":
				return "bad"
			case e.To == decide.Up || e.To == "cleared":
				return "good"
			}
			return "info"
		},
		"short": func(s string, n int) string {
			if len(s) <= n {
				return s
			}
			return s[:n-1] + "…"
		},
		"routedTo": func(sv view.Service) string {
			if sv.Route == nil {
				return ""
			}
			seen := map[string]bool{}
			var sites []string
			for _, t := range sv.Route.Targets {
				if !seen[t.Site] {
					seen[t.Site] = true
					sites = append(sites, t.Site)
				}
			}
			return strings.Join(sites, ", ")
		},
		"staleFor": func(s *view.Snapshot) string {
			if s.StaleSince.IsZero() {
				return ""
			}
			return view.FormatDuration(u.opt.Now().Sub(s.StaleSince))
		},
	}
}

func stateLabel(s string) string {
	switch s {
	case view.StateUp:
		return "Up"
	case view.StateDegraded:
		return "Degraded"
	case view.StateDown:
		return "Down"
	}
	return "Unknown"
}
