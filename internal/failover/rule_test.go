package failover

import (
	"errors"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	prim := Member{Site: "pangyo", Address: "10.0.0.1", Port: 5432}
	syncR := Member{Site: "ansan", Address: "10.0.1.1", Port: 5432, Mode: "sync"}
	asyncR := Member{Site: "chuncheon", Address: "10.0.2.1", Port: 5432, Mode: "async"}
	local := Member{Site: "pangyo", Address: "10.0.0.2", Port: 5432, Mode: "sync"}
	rep := func(m Member, pos uint64, lagB uint64, lagT time.Duration) Candidate {
		return Candidate{Member: m, Reachable: true, State: State{Role: RoleReplica, Position: pos}, LagBytes: lagB, LagTime: lagT, LagKnown: true}
	}
	ov := &Override{Who: "kim", Reason: "site burning"}
	tests := []struct {
		name     string
		in       RuleInput
		wantErr  error
		wantTo   Member
		wantLoss bool
	}{
		{name: "site up refused",
			in:      RuleInput{Primary: prim, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantErr: ErrSiteUp},
		{name: "site down, sync replica in RPO",
			in:     RuleInput{Primary: prim, SiteDown: true, Candidates: []Candidate{rep(asyncR, 9, 1, time.Second), rep(syncR, 10, 0, 0)}},
			wantTo: syncR},
		{name: "human says site down",
			in:     RuleInput{Primary: prim, AssumeSiteDown: ov, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantTo: syncR},
		{name: "override without reason",
			in:      RuleInput{Primary: prim, AssumeSiteDown: &Override{Who: "kim"}, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantErr: ErrOverride},
		{name: "replica in the primary's site never chosen",
			in:      RuleInput{Primary: prim, SiteDown: true, Candidates: []Candidate{rep(local, 10, 0, 0)}},
			wantErr: ErrNoCandidate},
		{name: "replica whose site is down skipped",
			in: RuleInput{Primary: prim, SiteDown: true, Candidates: []Candidate{
				func() Candidate { c := rep(syncR, 10, 0, 0); c.SiteDown = true; return c }(), rep(asyncR, 10, 0, 0)}},
			wantTo: asyncR},
		{name: "unreachable replica skipped",
			in:      RuleInput{Primary: prim, SiteDown: true, Candidates: []Candidate{{Member: syncR, Err: "refused"}}},
			wantErr: ErrNoCandidate},
		{name: "lag beyond RPO refused",
			in:      RuleInput{Primary: prim, SiteDown: true, RPO: time.Second, Candidates: []Candidate{rep(asyncR, 5, 500, 3*time.Second)}},
			wantErr: ErrRPO},
		{name: "lag beyond RPO with accepted loss",
			in:       RuleInput{Primary: prim, SiteDown: true, RPO: time.Second, AcceptLoss: ov, Candidates: []Candidate{rep(asyncR, 5, 500, 3*time.Second)}},
			wantTo:   asyncR,
			wantLoss: true},
		{name: "RPO zero needs zero bytes",
			in:      RuleInput{Primary: prim, SiteDown: true, RPO: 0, Candidates: []Candidate{rep(asyncR, 5, 1, 0)}},
			wantErr: ErrRPO},
		{name: "unknown lag is not within RPO",
			in:      RuleInput{Primary: prim, SiteDown: true, RPO: time.Hour, Candidates: []Candidate{{Member: asyncR, Reachable: true, State: State{Role: RoleReplica}}}},
			wantErr: ErrRPO},
		{name: "within RPO preferred over further ahead but beyond",
			in: RuleInput{Primary: prim, SiteDown: true, RPO: time.Second, Candidates: []Candidate{
				rep(asyncR, 20, 0, 0), rep(syncR, 10, 100, 5*time.Second)}},
			wantTo: asyncR},
		{name: "--to picks the site",
			in:     RuleInput{Primary: prim, SiteDown: true, To: "chuncheon", Candidates: []Candidate{rep(syncR, 10, 0, 0), rep(asyncR, 10, 0, 0)}},
			wantTo: asyncR},
		{name: "--to an unknown site",
			in:      RuleInput{Primary: prim, SiteDown: true, To: "busan", Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantErr: ErrNoCandidate},
		{name: "not fenced refused",
			in:      RuleInput{Primary: prim, SiteDown: true, FenceChecked: true, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantErr: ErrFenceFailed},
		{name: "fenced",
			in:     RuleInput{Primary: prim, SiteDown: true, FenceChecked: true, Fenced: true, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantTo: syncR},
		{name: "human says fenced",
			in:     RuleInput{Primary: prim, SiteDown: true, FenceChecked: true, AssumeFenced: ov, Candidates: []Candidate{rep(syncR, 10, 0, 0)}},
			wantTo: syncR},
		{name: "a member claiming primary is not a candidate",
			in: RuleInput{Primary: prim, SiteDown: true, Candidates: []Candidate{
				{Member: syncR, Reachable: true, State: State{Role: RolePrimary}, LagKnown: true}}},
			wantErr: ErrNoCandidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(d.Err, tt.wantErr) || d.Allowed {
					t.Fatalf("got err %v allowed %v, want %v", d.Err, d.Allowed, tt.wantErr)
				}
				return
			}
			if d.Err != nil || !d.Allowed {
				t.Fatalf("refused: %v (notes %v)", d.Err, d.Notes)
			}
			if !d.Chosen.Member.Same(tt.wantTo) {
				t.Errorf("chose %s, want %s", d.Chosen.Member, tt.wantTo)
			}
			if d.LossAccepted != tt.wantLoss {
				t.Errorf("LossAccepted = %v, want %v", d.LossAccepted, tt.wantLoss)
			}
		})
	}
}

func TestTrackerLag(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tr := NewTracker(time.Minute)
	if _, _, known := tr.Lag(0); known {
		t.Fatal("lag known without samples")
	}
	tr.ObservePrimary(at(0), 100)
	tr.ObservePrimary(at(1), 100)
	tr.ObservePrimary(at(2), 100) // idle: keeps first and latest
	tr.ObservePrimary(at(3), 200)
	tr.ObservePrimary(at(4), 300)
	tests := []struct {
		pos   uint64
		bytes uint64
		lag   time.Duration
	}{
		{300, 0, 0},
		{400, 0, 0},
		{250, 50, 1 * time.Second},  // lacks what came after t=3
		{200, 100, 1 * time.Second}, // has t=3's 200; lacks writes after t=3
		{150, 150, 2 * time.Second}, // lacks writes after t=2
		{50, 250, 4 * time.Second},  // behind the whole history
	}
	for _, tt := range tests {
		b, l, known := tr.Lag(tt.pos)
		if !known || b != tt.bytes || l != tt.lag {
			t.Errorf("Lag(%d) = %d, %s, %v; want %d, %s", tt.pos, b, l, known, tt.bytes, tt.lag)
		}
	}
	tr.ObservePrimary(at(5), 10) // a new primary: history restarts
	if b, _, _ := tr.Lag(10); b != 0 {
		t.Errorf("after reset, Lag(10) bytes = %d", b)
	}
}
