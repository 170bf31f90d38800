package failover

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Switchover moves the primary role to a replica while the primary is
// healthy, losing nothing: stop writes on the primary, wait until the
// replica has everything, claim the epoch, promote, flip routing, then make
// the old primary follow the new one (or leave it fenced for a resync
// runbook where the engine needs one). If the replica does not catch up in
// CatchUpTimeout, writes are resumed on the old primary and nothing changes.
func (m *Manager) Switchover(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	who, why := m.who(req)
	if req.Reason == "" {
		why = "planned switchover"
	}
	ep, rev, primary, err := m.current(ctx)
	if err != nil {
		return Result{}, err
	}
	if req.ExpectEpoch != nil && *req.ExpectEpoch != ep.Epoch {
		return Result{}, fmt.Errorf("%w: expected epoch %d, store has %d", ErrEpochConflict, *req.ExpectEpoch, ep.Epoch)
	}
	pst, err := m.probe(ctx, primary)
	if err != nil || pst.Role != RolePrimary {
		return Result{}, fmt.Errorf("switchover needs a healthy primary; %s: role %q, err %v (use an unplanned failover)", primary, pst.Role, err)
	}
	var chosen *Candidate
	for _, c := range m.candidates(ctx, primary) {
		if !c.Reachable || c.State.Role != RoleReplica || (req.To != "" && c.Member.Site != req.To) {
			continue
		}
		if chosen == nil || (c.Member.Mode == "sync" && chosen.Member.Mode != "sync") || c.State.Position > chosen.State.Position {
			cc := c
			chosen = &cc
		}
	}
	if chosen == nil {
		return Result{}, fmt.Errorf("%w: no reachable replica (to %q)", ErrNoCandidate, req.To)
	}
	target := chosen.Member
	fstart := time.Now()
	if err := m.cfg.Engine.StopWrites(ctx, primary); err != nil {
		_ = m.cfg.Engine.ResumeWrites(context.WithoutCancel(ctx), primary)
		return Result{}, fmt.Errorf("stop writes on %s: %w", primary, err)
	}
	// Wait for the replica to hold everything the primary wrote.
	caught := false
	var want, have uint64
	deadline := time.Now().Add(m.cfg.CatchUpTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		p, perr := m.probe(ctx, primary)
		r, rerr := m.probe(ctx, target)
		if perr == nil && rerr == nil {
			want, have = p.Position, r.Position
			if have >= want {
				caught = true
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !caught {
		rerr := m.cfg.Engine.ResumeWrites(context.WithoutCancel(ctx), primary)
		m.audit(ctx, Event{Kind: "failover-refused", Who: who, Reason: why, Epoch: ep.Epoch, From: primary, To: target,
			Error: fmt.Sprintf("replica did not catch up in %s (at %d of %d); writes resumed (%v)", m.cfg.CatchUpTimeout, have, want, rerr)})
		return Result{}, fmt.Errorf("switchover: %s did not catch up in %s (at %d of %d)", target, m.cfg.CatchUpTimeout, have, want)
	}
	next := Epoch{
		Datastore: m.ds.Name, Epoch: ep.Epoch + 1, Primary: target, Previous: primary,
		State: EpochPromoting, Planned: true, At: time.Now().UTC(), Who: who, Reason: why,
	}
	res, err := m.promote(ctx, rev, next, Decision{Allowed: true, Chosen: *chosen}, start)
	res.FencedBy, res.Fence = "switchover", time.Since(fstart)
	if err != nil {
		if errors.Is(err, ErrEpochConflict) {
			// Nothing was promoted: give the writes back.
			_ = m.cfg.Engine.ResumeWrites(context.WithoutCancel(ctx), primary)
		}
		return res, err
	}
	// The old primary follows the new one where the engine can do it
	// online; otherwise it stays fenced until a resync runbook runs.
	if err := m.cfg.Engine.Fence(ctx, primary, target); err != nil {
		m.cfg.Logger.Warn("fence old primary after switchover", "member", primary.String(), "err", err)
	}
	if err := m.cfg.Engine.Resync(ctx, primary, target); err != nil {
		m.cfg.Logger.Info("old primary stays fenced until resynced", "member", primary.String(), "err", err)
	}
	m.audit(ctx, Event{Kind: "switchover", Who: who, Reason: why, Epoch: next.Epoch, From: primary, To: target, FencedBy: "switchover",
		Notes: []string{fmt.Sprintf("replica caught up at position %d before promotion", want)}})
	return res, nil
}
