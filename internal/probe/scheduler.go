package probe

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one endpoint the scheduler checks.
type Target struct {
	// ID is the endpoint ID; targets are identified by it.
	ID string
	// Interval between check starts (default 1s), Timeout of one check
	// (default 500ms), Rise consecutive successes to turn up and Fall
	// consecutive failures to turn down (default 2 each).
	Interval, Timeout time.Duration
	Rise, Fall        int
	Checker           Checker
	// Type is the check type (topology.Check*), used as a metrics label;
	// optional.
	Type string
}

// Transition is a change of a target's state after hysteresis. The first
// settled state of a target (from unknown) is a transition too.
type Transition struct {
	ID  string
	Up  bool
	At  time.Time
	Err error // the last check error when down
}

// Stats are the scheduler's counters since Run.
type Stats struct {
	Checks      uint64        // checks completed
	Failures    uint64        // checks that returned an error
	Transitions uint64        // transitions reported
	Late        uint64        // checks started more than 10% of the interval late
	MaxLateness time.Duration // worst start delay observed
}

// Scheduler runs checks for many targets on a fixed worker pool. Start times
// are spread over the interval by hashing target IDs (no thundering herd);
// a min-heap of due times feeds one dispatcher; at most Workers checks run at
// once; no goroutine is started per target. When every worker is busy checks
// start late rather than piling up.
type Scheduler struct {
	workers      int
	onTransition func(Transition)
	// onCheck, when set, is called after every completed check with its
	// duration (from worker goroutines).
	onCheck func(t *Target, d time.Duration, err error)
	now     func() time.Time

	mu    sync.Mutex
	h     dueHeap
	items map[string]*item
	wake  chan struct{}

	checks, failures, transitions, late atomic.Uint64
	maxLate                             atomic.Int64
}

// DefaultWorkers is the default bound on concurrent checks.
const DefaultWorkers = 512

// NewScheduler returns a scheduler with workers concurrent checks
// (DefaultWorkers when <= 0). onTransition is called from worker goroutines,
// never concurrently for the same target; it may block (the worker waits).
func NewScheduler(workers int, onTransition func(Transition)) *Scheduler {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	return &Scheduler{workers: workers, onTransition: onTransition, now: time.Now,
		items: map[string]*item{}, wake: make(chan struct{}, 1)}
}

type item struct {
	t       Target
	due     time.Time
	idx     int // heap index, -1 when not in the heap
	removed bool
	// hysteresis, touched only by the worker running the item
	state     int8 // 0 unknown, 1 up, -1 down
	ok, fail  int
	lastError error
}

// Set makes the scheduler's targets exactly ts. New targets start at an
// offset within their interval derived from their ID; targets that stay keep
// their schedule and hysteresis state; removed targets stop (a check in
// flight finishes but reports nothing). It returns the IDs removed.
func (s *Scheduler) Set(ts []Target) (removed []string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[string]bool, len(ts))
	for _, t := range ts {
		keep[t.ID] = true
		if _, ok := s.items[t.ID]; ok {
			continue
		}
		t = withDefaults(t)
		it := &item{t: t, idx: -1, due: now.Add(offset(t.ID, t.Interval))}
		s.items[t.ID] = it
		heap.Push(&s.h, it)
	}
	for id, it := range s.items {
		if keep[id] {
			continue
		}
		it.removed = true
		if it.idx >= 0 {
			heap.Remove(&s.h, it.idx)
		}
		delete(s.items, id)
		removed = append(removed, id)
	}
	s.poke()
	return removed
}

// Len returns the number of targets.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	return Stats{Checks: s.checks.Load(), Failures: s.failures.Load(), Transitions: s.transitions.Load(),
		Late: s.late.Load(), MaxLateness: time.Duration(s.maxLate.Load())}
}

func withDefaults(t Target) Target {
	if t.Interval <= 0 {
		t.Interval = time.Second
	}
	if t.Timeout <= 0 {
		t.Timeout = 500 * time.Millisecond
	}
	if t.Rise <= 0 {
		t.Rise = 2
	}
	if t.Fall <= 0 {
		t.Fall = 2
	}
	return t
}

func offset(id string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(mix(h.Sum64()) % uint64(interval))
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run checks targets until ctx is done, then waits for the checks in flight
// and returns ctx.Err().
func (s *Scheduler) Run(ctx context.Context) error {
	work := make(chan *item, s.workers)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				s.runOne(ctx, it)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := make([]*item, 0, 256)
	for {
		// Pop every due item (up to a batch) under one lock.
		batch = batch[:0]
		wait := time.Hour
		s.mu.Lock()
		now := s.now()
		for len(s.h) > 0 && len(batch) < cap(batch) {
			if d := s.h[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			batch = append(batch, heap.Pop(&s.h).(*item))
		}
		s.mu.Unlock()
		for _, it := range batch {
			select {
			case work <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(batch) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-timer.C:
		}
	}
}

func (s *Scheduler) runOne(ctx context.Context, it *item) {
	start := s.now()
	if late := start.Sub(it.due); late > 0 {
		if late > it.t.Interval/10 {
			s.late.Add(1)
		}
		for {
			cur := s.maxLate.Load()
			if int64(late) <= cur || s.maxLate.CompareAndSwap(cur, int64(late)) {
				break
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, it.t.Timeout)
	err := safeCheck(cctx, it.t.Checker)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: a cancelled check says nothing about the target
	}
	if s.onCheck != nil {
		s.onCheck(&it.t, s.now().Sub(start), err)
	}
	s.checks.Add(1)
	if err != nil {
		s.failures.Add(1)
	}
	changed := it.observe(err)

	s.mu.Lock()
	removed := it.removed
	if !removed {
		// Keep the cadence; skip slots missed while late.
		it.due = it.due.Add(it.t.Interval)
		if now := s.now(); it.due.Before(now) {
			missed := now.Sub(it.due)/it.t.Interval + 1
			it.due = it.due.Add(missed * it.t.Interval)
		}
		heap.Push(&s.h, it)
		if it.idx == 0 {
			s.poke()
		}
	}
	s.mu.Unlock()
	if changed && !removed && s.onTransition != nil {
		s.transitions.Add(1)
		s.onTransition(Transition{ID: it.t.ID, Up: it.state > 0, At: s.now(), Err: it.lastError})
	}
}

var errPanic = errors.New("check panicked")

func safeCheck(ctx context.Context, c Checker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic
		}
	}()
	return c.Check(ctx)
}

// observe applies rise/fall hysteresis and reports a state change.
func (it *item) observe(err error) bool {
	if err == nil {
		it.ok++
		it.fail = 0
		if it.state <= 0 && it.ok >= it.t.Rise {
			it.state = 1
			it.lastError = nil
			return true
		}
		return false
	}
	it.fail++
	it.ok = 0
	it.lastError = err
	if it.state >= 0 && it.fail >= it.t.Fall {
		it.state = -1
		return true
	}
	return false
}

type dueHeap []*item

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *dueHeap) Push(x any) {
	it := x.(*item)
	it.idx = len(*h)
	*h = append(*h, it)
}
func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.idx = -1
	*h = old[:n-1]
	return it
}
