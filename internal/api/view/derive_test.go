package view

import (
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/routing"
)

func services() []Service {
	return []Service{
		{Name: "login", Public: "Login", Endpoints: []Endpoint{{ID: "login/a/1:1"}, {ID: "login/b/2:1"}}},
		{Name: "mail", Endpoints: []Endpoint{{ID: "mail/a/3:1"}}},
	}
}

func ev(t time.Time, id, to string) decide.Event {
	from := decide.Up
	if to == decide.Up {
		from = decide.Down
	}
	return decide.Event{Time: t, Kind: decide.EventEndpoint, Subject: id, From: from, To: to}
}

func TestIncidents(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	now := t0.Add(48 * time.Hour)
	since := t0.Add(-24 * time.Hour)
	tests := []struct {
		name   string
		events []decide.Event
		want   []Incident // only Service, Worst, Start, End, Ongoing checked
	}{
		{"nothing happened", nil, nil},
		{"one endpoint down then up: degraded", []decide.Event{
			ev(t0, "login/a/1:1", decide.Down), ev(t0.Add(time.Hour), "login/a/1:1", decide.Up),
		}, []Incident{{Service: "login", Worst: StateDegraded, Start: t0, End: t0.Add(time.Hour)}}},
		{"both down: down, then partly back, then all back: one incident", []decide.Event{
			ev(t0, "login/a/1:1", decide.Down), ev(t0.Add(time.Minute), "login/b/2:1", decide.Down),
			ev(t0.Add(10*time.Minute), "login/a/1:1", decide.Up), ev(t0.Add(20*time.Minute), "login/b/2:1", decide.Up),
		}, []Incident{{Service: "login", Worst: StateDown, Start: t0, End: t0.Add(20 * time.Minute)}}},
		{"ongoing", []decide.Event{ev(t0, "mail/a/3:1", decide.Down)},
			[]Incident{{Service: "mail", Worst: StateDown, Start: t0, Ongoing: true}}},
		{"two incidents, newest first", []decide.Event{
			ev(t0, "mail/a/3:1", decide.Down), ev(t0.Add(time.Minute), "mail/a/3:1", decide.Up),
			ev(t0.Add(time.Hour), "mail/a/3:1", decide.Down), ev(t0.Add(2*time.Hour), "mail/a/3:1", decide.Up),
		}, []Incident{
			{Service: "mail", Worst: StateDown, Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour)},
			{Service: "mail", Worst: StateDown, Start: t0, End: t0.Add(time.Minute)},
		}},
		{"unknown endpoints and other kinds are ignored", []decide.Event{
			ev(t0, "gone/a/9:9", decide.Down),
			{Time: t0, Kind: decide.EventSite, Subject: "a", From: decide.Up, To: decide.Down},
		}, nil},
		{"down and up at the same instant: no incident", []decide.Event{
			ev(t0, "mail/a/3:1", decide.Down), ev(t0, "mail/a/3:1", decide.Up),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Incidents(services(), tc.events, since, now, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d incidents %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Service != w.Service || g.Worst != w.Worst || !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Ongoing != w.Ongoing {
					t.Errorf("incident %d = %s %s %s..%s ongoing %v, want %s %s %s..%s ongoing %v", i,
						g.Service, g.Worst, g.Start, g.End, g.Ongoing, w.Service, w.Worst, w.Start, w.End, w.Ongoing)
				}
				if len(g.Updates) == 0 {
					t.Errorf("incident %d has no updates", i)
				}
			}
		})
	}
}

func TestUptime(t *testing.T) {
	today := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	now := today.Add(12 * time.Hour)
	since := today.AddDate(0, 0, -2) // history starts two days ago
	evs := []decide.Event{
		ev(today.AddDate(0, 0, -1).Add(6*time.Hour), "mail/a/3:1", decide.Down),
		ev(today.AddDate(0, 0, -1).Add(12*time.Hour), "mail/a/3:1", decide.Up),
		ev(today.Add(time.Hour), "login/a/1:1", decide.Down),
	}
	bars := Uptime(services(), evs, since, now, 5)
	mail := bars["mail"]
	if len(mail) != 5 {
		t.Fatalf("%d bars", len(mail))
	}
	want := []struct {
		state  string
		uptime float64
	}{
		{StateUnknown, -1}, {StateUnknown, -1}, {StateUp, 1}, {StateDown, 0.75}, {StateUp, 1},
	}
	for i, w := range want {
		if mail[i].State != w.state || mail[i].Uptime != w.uptime {
			t.Errorf("mail day %d (%s): %s %.3f, want %s %.3f", i, mail[i].Date.Format("Jan 2"), mail[i].State, mail[i].Uptime, w.state, w.uptime)
		}
	}
	if l := bars["login"][4]; l.State != StateDegraded || l.Uptime != 1 || l.Degraded != 11*time.Hour {
		t.Errorf("login today: %+v", l)
	}
	// 6h down in 2 days and 12h known: 1 - 6/60.
	if p := UptimePercent(mail); p < 89.99 || p > 90.01 {
		t.Errorf("mail uptime %.3f%%, want 90%%", p)
	}
	if p := UptimePercent(mail[:2]); p != -1 {
		t.Errorf("uptime of unknown days %.3f, want -1", p)
	}
}

func TestServiceState(t *testing.T) {
	tests := []struct {
		n, up, down int
		route       *routing.Route
		want        string
	}{
		{0, 0, 0, nil, StateUnknown},
		{2, 2, 0, nil, StateUp},
		{2, 1, 1, nil, StateDegraded},
		{2, 0, 2, nil, StateDown},
		{2, 2, 0, &routing.Route{FailOpen: true}, StateDegraded},
		{2, 1, 0, nil, StateUp},
		{2, 0, 0, nil, StateUnknown},
	}
	for _, tc := range tests {
		if got := serviceState(tc.n, tc.up, tc.down, tc.route); got != tc.want {
			t.Errorf("serviceState(%d, %d, %d, failOpen %v) = %s, want %s", tc.n, tc.up, tc.down, tc.route != nil, got, tc.want)
		}
	}
}

func TestBuildAlarmsAndDrains(t *testing.T) {
	now := time.Now()
	raw := &Raw{Now: now, History: []decide.Event{
		{Time: now, Kind: decide.EventAlarm, Subject: "fail-open login", To: "raised", Reason: "all down"},
		{Time: now, Kind: decide.EventAlarm, Subject: "suspect-partition n1", To: "raised"},
		{Time: now, Kind: decide.EventAlarm, Subject: "suspect-partition n1", To: "cleared"},
	}, Overrides: map[string]decide.Override{
		"d": {ID: "d", Kind: decide.KindDrain, Target: "a", Who: "w", Why: "y", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
		"e": {ID: "e", Kind: decide.KindDrain, Target: "b", Who: "w", Why: "y", Created: now.Add(-time.Hour), Expires: now.Add(-time.Minute)},
	}}
	s := Build(raw)
	if len(s.Alarms) != 1 || s.Alarms[0].Kind != "fail-open" || s.Alarms[0].Subject != "login" {
		t.Fatalf("alarms %+v", s.Alarms)
	}
	if len(s.Overrides) != 2 || !s.Overrides[0].Active || s.Overrides[1].Active {
		t.Fatalf("overrides %+v", s.Overrides)
	}
	if len(s.History) != 3 || s.Sites == nil || s.Services == nil {
		t.Fatalf("history %d", len(s.History))
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{1500 * time.Millisecond, "2s"},
		{40 * time.Minute, "40m"},
		{3*time.Minute + 5*time.Second, "3m 5s"},
		{2 * time.Hour, "2h"},
		{2*time.Hour + 10*time.Minute, "2h 10m"},
		{5*24*time.Hour + 3*time.Hour, "5d 3h"},
	} {
		if got := FormatDuration(tc.d); got != tc.want {
			t.Errorf("FormatDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
