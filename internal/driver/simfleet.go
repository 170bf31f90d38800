package driver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// SimFleet is a TEST FIXTURE, not a driver for real machines: an in-memory
// fleet of servers for tests and benchmarks of the runbook engine. Each
// action takes a random latency in [MinLatency, MaxLatency], fails
// transiently with probability FailureRate, and remembers its effect per
// target: the power state, and how many times each named change was applied.
// Effects take place halfway through the latency, so an action cancelled
// late has taken effect although it reports an error, as a real one might.
//
// Operations:
//
//	power-on, power-off  set the power state (idempotent by nature)
//	power-state          verification: the state equals parameter state (default On)
//	apply                apply the change named by parameter change (default
//	                     the op's step); counted per target
//	applied              verification: the change was applied at least once
//
// Applications counts every application; Repeated counts targets on which
// a change was applied more than once, which a correct runner never does for
// a non-idempotent step.
type SimFleet struct {
	// MinLatency and MaxLatency bound each action's duration (default 0).
	MinLatency, MaxLatency time.Duration
	// FailureRate is the probability, 0 to 1, that an action fails
	// transiently without effect (default 0).
	FailureRate float64

	mu      sync.Mutex
	targets map[string]*simTarget

	calls, failures, repeated atomic.Int64
	busy                      atomic.Int64 // nanoseconds of action time
}

type simTarget struct {
	on      bool
	applied map[string]int32
}

// Ops lists SimFleet's operations.
func (*SimFleet) Ops() []string {
	return []string{"power-on", "power-off", "power-state", "apply", "applied"}
}

// ErrSimulated is the transient failure SimFleet injects.
var ErrSimulated = errors.New("simulated transient failure")

// Do simulates op on t.
func (f *SimFleet) Do(ctx context.Context, t Target, op string, p Params) error {
	switch op {
	case "power-on", "power-off", "apply":
	case "power-state":
		want := orDefault(p["state"], PowerOn)
		f.calls.Add(1)
		st := f.state(t.Name)
		f.mu.Lock()
		on := st.on
		f.mu.Unlock()
		got := PowerOff
		if on {
			got = PowerOn
		}
		if got != want {
			return fmt.Errorf("sim %s: power state is %s, expected %s", t.Name, got, want)
		}
		return nil
	case "applied":
		f.calls.Add(1)
		if f.Applied(t.Name, p["change"]) == 0 {
			return fmt.Errorf("sim %s: change %q not applied", t.Name, p["change"])
		}
		return nil
	default:
		return unknownOp("sim", op, f.Ops())
	}
	f.calls.Add(1)
	lat := f.MinLatency
	if f.MaxLatency > f.MinLatency {
		lat += rand.N(f.MaxLatency - f.MinLatency)
	}
	start := time.Now()
	defer func() { f.busy.Add(int64(time.Since(start))) }()
	if f.FailureRate > 0 && rand.Float64() < f.FailureRate {
		if err := sleepCtx(ctx, lat); err != nil {
			return err
		}
		f.failures.Add(1)
		return fmt.Errorf("sim %s %s: %w", t.Name, op, ErrSimulated)
	}
	if err := sleepCtx(ctx, lat/2); err != nil {
		return err
	}
	st := f.state(t.Name)
	f.mu.Lock()
	switch op {
	case "power-on":
		st.on = true
	case "power-off":
		st.on = false
	case "apply":
		if st.applied == nil {
			st.applied = make(map[string]int32, 4)
		}
		st.applied[p["change"]]++
		if st.applied[p["change"]] == 2 {
			f.repeated.Add(1)
		}
	}
	f.mu.Unlock()
	return sleepCtx(ctx, lat-lat/2)
}

func (f *SimFleet) state(name string) *simTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.targets == nil {
		f.targets = make(map[string]*simTarget)
	}
	st := f.targets[name]
	if st == nil {
		st = &simTarget{}
		f.targets[name] = st
	}
	return st
}

// SetPower sets a target's power state, for test set-up.
func (f *SimFleet) SetPower(name string, on bool) {
	st := f.state(name)
	f.mu.Lock()
	st.on = on
	f.mu.Unlock()
}

// Power reports a target's power state.
func (f *SimFleet) Power(name string) bool {
	st := f.state(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	return st.on
}

// Applied returns how many times change was applied to target name.
func (f *SimFleet) Applied(name, change string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.targets[name]; st != nil {
		return int(st.applied[change])
	}
	return 0
}

// Repeated returns how many (target, change) pairs were applied more than once.
func (f *SimFleet) Repeated() int64 { return f.repeated.Load() }

// Calls returns how many operations were called, verifications included.
func (f *SimFleet) Calls() int64 { return f.calls.Load() }

// Failures returns how many transient failures were injected.
func (f *SimFleet) Failures() int64 { return f.failures.Load() }

// Busy returns the total time spent in actions (not verifications).
func (f *SimFleet) Busy() time.Duration { return time.Duration(f.busy.Load()) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ Driver = (*SimFleet)(nil)
