package runbook

import (
	"context"
	"errors"
	"sync"
)

// ResumeUnfinished resumes every run in the journal that has not finished
// (created, running or paused), each in its own goroutine, and waits for
// them. The integrator calls it when this node becomes leader, with a
// context that ends when leadership is lost. It returns the errors of runs
// that stopped for another reason than ctx ending, joined.
func (r *Runner) ResumeUnfinished(ctx context.Context) error {
	ids, err := r.Journal.List(ctx)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		st, err := r.Journal.State(ctx, id)
		if err != nil {
			return err
		}
		switch st.Status {
		case StatusDone, StatusFailed, StatusAborted:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Resume(ctx, id); err != nil && ctx.Err() == nil && !errors.Is(err, ErrAborted) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
