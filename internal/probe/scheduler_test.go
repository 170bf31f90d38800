package probe

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runSched(t *testing.T, s *Scheduler) {
	t.Helper()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		eventually(t, 5*time.Second, "scheduler goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
	})
}

func TestSchedulerHysteresis(t *testing.T) {
	var fail atomic.Bool
	var mu sync.Mutex
	var got []Transition
	s := NewScheduler(2, func(tr Transition) { mu.Lock(); got = append(got, tr); mu.Unlock() })
	s.Set([]Target{{ID: "x", Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 2, Fall: 3,
		Checker: CheckerFunc(func(context.Context) error {
			if fail.Load() {
				return errors.New("boom")
			}
			return nil
		})}})
	runSched(t, s)
	transitions := func() []Transition { mu.Lock(); defer mu.Unlock(); return append([]Transition(nil), got...) }
	eventually(t, 5*time.Second, "first up", func() bool { return len(transitions()) == 1 })
	if tr := transitions()[0]; !tr.Up || tr.ID != "x" {
		t.Fatalf("first transition %+v, want x up", tr)
	}
	if c := s.Stats().Checks; c < 2 {
		t.Fatalf("up after %d checks, rise is 2", c)
	}
	before := s.Stats().Checks
	fail.Store(true)
	eventually(t, 5*time.Second, "down", func() bool { return len(transitions()) == 2 })
	tr := transitions()[1]
	if tr.Up || tr.Err == nil {
		t.Fatalf("second transition %+v, want down with an error", tr)
	}
	if n := s.Stats().Checks - before; n < 3 {
		t.Fatalf("down after %d failing checks, fall is 3", n)
	}
	fail.Store(false)
	eventually(t, 5*time.Second, "up again", func() bool { return len(transitions()) == 3 && transitions()[2].Up })
}

func TestSchedulerRemoveAndBound(t *testing.T) {
	var cur, peak atomic.Int32
	var checks sync.Map
	chk := func(id string) Checker {
		return CheckerFunc(func(context.Context) error {
			n := cur.Add(1)
			defer cur.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			v, _ := checks.LoadOrStore(id, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			time.Sleep(2 * time.Millisecond)
			return nil
		})
	}
	s := NewScheduler(4, nil)
	var ts []Target
	for i := range 50 {
		id := fmt.Sprintf("t%d", i)
		ts = append(ts, Target{ID: id, Interval: 20 * time.Millisecond, Checker: chk(id)})
	}
	s.Set(ts)
	runSched(t, s)
	eventually(t, 5*time.Second, "200 checks", func() bool { return s.Stats().Checks >= 200 })
	if p := peak.Load(); p > 4 {
		t.Fatalf("%d checks ran at once, workers is 4", p)
	}
	removed := s.Set(ts[:10])
	if len(removed) != 40 || s.Len() != 10 {
		t.Fatalf("removed %d, len %d; want 40 and 10", len(removed), s.Len())
	}
	snap := func(id string) int64 {
		v, ok := checks.Load(id)
		if !ok {
			return 0
		}
		return v.(*atomic.Int64).Load()
	}
	// Wait for in-flight checks, then the removed targets must stay quiet
	// while the kept ones go on.
	eventually(t, time.Second, "in-flight checks", func() bool { return cur.Load() == 0 })
	gone := snap("t30")
	kept := snap("t3")
	eventually(t, 5*time.Second, "kept target checked again", func() bool { return snap("t3") >= kept+3 })
	if snap("t30") > gone+1 {
		t.Fatalf("removed target t30 still checked: %d -> %d", gone, snap("t30"))
	}
}

func TestOffsetsSpread(t *testing.T) {
	buckets := make([]int, 10)
	for i := range 10000 {
		o := offset(fmt.Sprintf("svc/site/10.0.%d.%d:80", i/256, i%256), time.Second)
		if o < 0 || o >= time.Second {
			t.Fatalf("offset %v outside the interval", o)
		}
		buckets[o/(100*time.Millisecond)]++
	}
	for i, n := range buckets {
		if n < 800 || n > 1200 {
			t.Errorf("bucket %d has %d of 10000 starts; want about 1000 (spread)", i, n)
		}
	}
}
