package runbook

import (
	"fmt"
	"time"
)

// Bound is a lower bound on a run's makespan: no schedule that respects the
// plan's limits and dependencies can finish sooner, given the durations of
// its actions.
type Bound struct {
	// Makespan is the bound: the largest of Critical and every limiter's
	// load divided by its capacity.
	Makespan time.Duration
	// Binding names what sets it: "critical path" or a limiter key.
	Binding string
	// Critical is the longest chain of dependent actions.
	Critical time.Duration
	// Work is the summed duration of all actions.
	Work time.Duration
}

func (b Bound) String() string {
	return fmt.Sprintf("%s (bound by %s; critical path %s, total work %s)", b.Makespan.Round(time.Millisecond), b.Binding,
		b.Critical.Round(time.Millisecond), b.Work.Round(time.Second))
}

// LowerBound computes the bound for actions taking durs (by item index, as
// in Stats.Durations).
func (p *Plan) LowerBound(durs []time.Duration) Bound {
	load := make([]time.Duration, len(p.Limiters))
	var b Bound
	for i, it := range p.items {
		d := durs[i]
		b.Work += d
		for _, l := range p.buckets[it.bucket].limiters {
			load[l] += d
		}
	}
	b.Critical = p.criticalPath(durs)
	b.Makespan, b.Binding = b.Critical, "critical path"
	for l, lim := range p.Limiters {
		if lim.Cap <= 0 {
			continue
		}
		if m := load[l] / time.Duration(lim.Cap); m > b.Makespan {
			b.Makespan, b.Binding = m, lim.Key
		}
	}
	return b
}

// Predict estimates the makespan for --dry-run from each step's Estimate:
// the lower bound for actions that take exactly their estimate.
func (p *Plan) Predict() Bound {
	durs := make([]time.Duration, len(p.items))
	for i, it := range p.items {
		durs[i] = p.Runbook.Steps[it.step].Estimate
	}
	return p.LowerBound(durs)
}

// criticalPath is the longest path through the item DAG (Kahn's order).
func (p *Plan) criticalPath(durs []time.Duration) time.Duration {
	n := len(p.items)
	pending := make([]int32, n)
	start := make([]time.Duration, n)
	gmax := make([]time.Duration, len(p.groups))
	gleft := make([]int32, len(p.groups))
	for g := range p.groups {
		gleft[g] = p.groups[g].members
	}
	queue := make([]int32, 0, n)
	for i := range p.items {
		pending[i] = int32(len(p.items[i].waits))
		if pending[i] == 0 {
			queue = append(queue, int32(i))
		}
	}
	var longest time.Duration
	for len(queue) > 0 {
		x := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		f := start[x] + durs[x]
		longest = max(longest, f)
		for _, g := range p.items[x].memberOf {
			gmax[g] = max(gmax[g], f)
			gleft[g]--
			if gleft[g] == 0 {
				for _, w := range p.groups[g].waiters {
					start[w] = max(start[w], gmax[g])
					pending[w]--
					if pending[w] == 0 {
						queue = append(queue, w)
					}
				}
			}
		}
	}
	return longest
}
