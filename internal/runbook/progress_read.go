package runbook

import (
	"context"
	"log/slog"
)

// ReadProgress rebuilds a run's progress from the journal alone, for
// `firebreak runbook status` on any node. Running counts non-idempotent
// actions whose start was recorded and whose end was not.
func ReadProgress(ctx context.Context, j Journal, id string) (Progress, error) {
	_, plan, err := LoadRun(ctx, j, id, nil)
	if err != nil {
		return Progress{}, err
	}
	st, err := j.State(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	ex := newExec(&Runner{Journal: j}, plan, nil, id, "", 0, slog.Default())
	ex.progress.Started = st.Started
	if err := ex.replay(ctx); err != nil {
		return Progress{}, err
	}
	for i := range plan.items {
		if ex.verifyFrst[i] && ex.status[i] != stDone && ex.status[i] != stFailed {
			ex.counts[plan.items[i].step].Running++
		}
	}
	status := st.Status
	if status == "" {
		status = "created"
	}
	p := ex.snapshot(status)
	p.ETA = 0
	if !st.Updated.IsZero() {
		p.Updated = st.Updated
	}
	return p, nil
}
