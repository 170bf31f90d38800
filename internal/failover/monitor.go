package failover

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Readiness checks.
const (
	CheckReplicaOutsideSite = "replica-outside-site"
	CheckLagWithinRPO       = "lag-within-rpo"
	CheckCapacity           = "capacity"
	CheckFencePath          = "fence-path"
)

// CheckResult is one readiness check.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Readiness says whether the datastore could fail over now, within its
// RPO, if the primary's site were lost.
type Readiness struct {
	Datastore string `json:"datastore"`
	Engine    string `json:"engine"`
	Epoch     int64  `json:"epoch"`
	// EpochState is the epoch's state (empty before any promotion).
	EpochState string        `json:"epochState,omitempty"`
	Primary    Member        `json:"primary"`
	PrimaryUp  bool          `json:"primaryUp"`
	RPO        time.Duration `json:"rpo"`
	// Ready is true when every check passed.
	Ready    bool          `json:"ready"`
	Checks   []CheckResult `json:"checks"`
	Replicas []Candidate   `json:"replicas"`
	At       time.Time     `json:"at"`
}

// Summary is a one-line description for status output.
func (r Readiness) Summary() string {
	var bad []string
	for _, c := range r.Checks {
		if !c.OK {
			bad = append(bad, c.Name+": "+c.Detail)
		}
	}
	if len(bad) == 0 {
		return fmt.Sprintf("%s: ready (epoch %d, primary %s)", r.Datastore, r.Epoch, r.Primary)
	}
	return fmt.Sprintf("%s: NOT ready (epoch %d, primary %s): %s", r.Datastore, r.Epoch, r.Primary, strings.Join(bad, "; "))
}

// Readiness returns the result of Run's latest round (zero before the
// first one).
func (m *Manager) Readiness() Readiness {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readiness
}

// Check probes every member once, records the primary's position for lag
// tracking, and returns the readiness. It does not fence anything.
func (m *Manager) Check(ctx context.Context) (Readiness, error) {
	r, _, err := m.round(ctx)
	return r, err
}

// Run probes every Interval until ctx ends: it keeps Readiness current,
// feeds the lag tracker (the "last known lag" a failover uses) and fences
// on sight any member that acts as a writable primary without holding the
// epoch (an old primary that came back). It returns ctx's error.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		r, states, err := m.round(ctx)
		if err != nil {
			m.cfg.Logger.Debug("readiness round", "err", err)
		} else {
			m.guard(ctx, r, states)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// round probes the primary, then the replicas.
func (m *Manager) round(ctx context.Context) (Readiness, map[string]State, error) {
	ep, _, primary, err := m.current(ctx)
	if err != nil {
		return Readiness{}, nil, err
	}
	r := Readiness{Datastore: m.ds.Name, Engine: m.cfg.Engine.Name(), Epoch: ep.Epoch, EpochState: ep.State, Primary: primary, RPO: m.ds.RPO, At: time.Now().UTC()}
	states := map[string]State{}
	pst, perr := m.probe(ctx, primary)
	if perr == nil && pst.Role == RolePrimary {
		r.PrimaryUp = true
		now := time.Now()
		m.tracker.ObservePrimary(now, pst.Position)
		m.persistObservation(ctx, primary, now, pst.Position)
		states[primary.Addr()] = pst
	}
	r.Replicas = m.candidates(ctx, primary)
	for _, c := range r.Replicas {
		if c.Reachable {
			states[c.Member.Addr()] = c.State
		}
	}
	var outside, within, capable []string
	for _, c := range r.Replicas {
		if c.Member.Site == primary.Site || !c.Reachable || c.State.Role != RoleReplica {
			continue
		}
		outside = append(outside, c.Member.String())
		if c.WithinRPO(m.ds.RPO) {
			within = append(within, c.Member.String())
		}
		// Capacity 0 is unlimited; unknown (primary down) passes.
		if !r.PrimaryUp || c.State.Capacity == 0 || (pst.Capacity != 0 && c.State.Capacity >= pst.Capacity) {
			capable = append(capable, c.Member.String())
		}
	}
	add := func(name string, ok bool, detail string) {
		r.Checks = append(r.Checks, CheckResult{Name: name, OK: ok, Detail: detail})
	}
	if len(outside) > 0 {
		add(CheckReplicaOutsideSite, true, strings.Join(outside, ", "))
	} else {
		add(CheckReplicaOutsideSite, false, "no reachable replica outside site "+primary.Site)
	}
	switch {
	case len(within) > 0:
		add(CheckLagWithinRPO, true, strings.Join(within, ", "))
	case !r.PrimaryUp:
		add(CheckLagWithinRPO, false, "primary unreachable: lag unknown now")
	default:
		add(CheckLagWithinRPO, false, "no replica outside the primary's site within RPO "+m.ds.RPO.String())
	}
	if len(capable) > 0 {
		add(CheckCapacity, true, strings.Join(capable, ", "))
	} else {
		add(CheckCapacity, false, fmt.Sprintf("no replica outside the site has the primary's capacity (%d)", pst.Capacity))
	}
	switch {
	case r.PrimaryUp:
		add(CheckFencePath, true, "primary reachable: direct fence")
	case m.cfg.Fencer == nil:
		add(CheckFencePath, false, "primary unreachable and no fencer configured")
	default:
		if err := m.cfg.Fencer.Check(ctx, primary); err != nil {
			add(CheckFencePath, false, err.Error())
		} else {
			add(CheckFencePath, true, "fencer reachable")
		}
	}
	r.Ready = true
	for _, c := range r.Checks {
		r.Ready = r.Ready && c.OK
	}
	m.mu.Lock()
	m.readiness = r
	m.mu.Unlock()
	return r, states, nil
}

// guard fences any member other than the epoch's primary that acts as a
// writable primary: an old primary that came back without a resync.
func (m *Manager) guard(ctx context.Context, r Readiness, states map[string]State) {
	if r.EpochState == EpochPromoting {
		// A promotion is under way: the old primary is still being moved
		// over by the procedure itself (a switchover pauses, not fences).
		return
	}
	for _, c := range r.Replicas {
		st, ok := states[c.Member.Addr()]
		if !ok || st.Role != RolePrimary || !st.Writable {
			continue
		}
		// The round read the epoch before probing: a promotion that
		// completed in between made c the rightful primary. Fence only
		// when the epoch is still the one the round saw.
		if ep, _, now, err := m.current(ctx); err != nil || ep.Epoch != r.Epoch || ep.State == EpochPromoting || now.Same(c.Member) {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
		err := m.cfg.Engine.Fence(fctx, c.Member, r.Primary)
		cancel()
		e := Event{Kind: "fenced-on-sight", Who: m.cfg.Who, Reason: "writable primary without the epoch", Epoch: r.Epoch, From: c.Member, To: r.Primary}
		if err != nil {
			e.Error = err.Error()
		}
		m.audit(ctx, e)
	}
}
