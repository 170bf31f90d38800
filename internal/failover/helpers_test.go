package failover_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
)

// needBinaries skips (or, in CI, fails) when a server is not installed.
func needBinaries(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, harness.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skipf("skipping: %v (run scripts/install-test-deps.sh)", err)
	}
	t.Fatal(err)
}

func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	e, err := harness.StartEtcd()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.Client
}

// sites is the test's verdict source: which sites are down.
type sites struct {
	mu   sync.Mutex
	down map[string]bool
}

func (s *sites) set(site string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		s.down = map[string]bool{}
	}
	s.down[site] = down
}

func (s *sites) verdict(_ context.Context, site string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down[site], nil
}

// stonith is the test's fencer: it confirms a member is fenced only when
// its process is really gone (the "power" is off).
type stonith struct {
	mu    sync.Mutex
	calls int
	alive func(failover.Member) bool
}

func (s *stonith) Fence(_ context.Context, m failover.Member) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.alive(m) {
		return errors.New("power still on")
	}
	return nil
}

func (s *stonith) Check(context.Context, failover.Member) error { return nil }

// runManager runs m.Run until the test ends.
func runManager(t *testing.T, m *failover.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// eventually polls cond until it is true or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// raceFailover runs two failovers from two managers that both decided on
// epoch 0 and meet right before the compare-and-swap: exactly one may win.
func raceFailover(t *testing.T, a, b *failover.Manager, req failover.Request) failover.Result {
	t.Helper()
	var arrived atomic.Int32
	both := make(chan struct{})
	hook := func() {
		if arrived.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both:
		case <-time.After(20 * time.Second): // the other one failed earlier
		}
	}
	a.SetBeforeClaim(hook)
	b.SetBeforeClaim(hook)
	defer a.SetBeforeClaim(nil)
	defer b.SetBeforeClaim(nil)
	zero := int64(0)
	req.ExpectEpoch = &zero
	type out struct {
		res failover.Result
		err error
	}
	ch := make(chan out, 2)
	for _, m := range []*failover.Manager{a, b} {
		go func(m *failover.Manager) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := m.Failover(ctx, req)
			ch <- out{res, err}
		}(m)
	}
	o1, o2 := <-ch, <-ch
	if (o1.err == nil) == (o2.err == nil) {
		t.Fatalf("want exactly one failover to win; got errors %v and %v", o1.err, o2.err)
	}
	win, lose := o1, o2
	if o1.err != nil {
		win, lose = o2, o1
	}
	if !errors.Is(lose.err, failover.ErrEpochConflict) {
		t.Fatalf("loser refused with %v, want ErrEpochConflict", lose.err)
	}
	if win.res.Epoch.Epoch != 1 {
		t.Fatalf("winner's epoch = %d, want 1", win.res.Epoch.Epoch)
	}
	return win.res
}
