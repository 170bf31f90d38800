package store

import (
	"context"
	"time"
)

// retryDelay is how long loops wait before retrying an unreachable store.
const retryDelay = 200 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
