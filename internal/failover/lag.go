package failover

import (
	"sync"
	"time"
)

// Tracker remembers the primary's recent write positions so that a
// replica's lag can be expressed in time as well as in bytes, even after
// the primary is gone ("last known lag"). It is safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	samples []sample // oldest first
	window  time.Duration
}

type sample struct {
	at  time.Time
	pos uint64
}

// NewTracker keeps samples for window (default 10 minutes).
func NewTracker(window time.Duration) *Tracker {
	if window <= 0 {
		window = 10 * time.Minute
	}
	return &Tracker{window: window}
}

// ObservePrimary records the primary's write position at a moment.
// A position lower than the last one (a new primary, a new timeline)
// starts the history over.
func (t *Tracker) ObservePrimary(at time.Time, pos uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.samples); n > 0 && pos < t.samples[n-1].pos {
		t.samples = t.samples[:0]
	}
	if n := len(t.samples); n > 0 && t.samples[n-1].pos == pos {
		// Keep the first moment the position was reached, but remember the
		// primary was still alive at this position now.
		if n >= 2 && t.samples[n-2].pos == pos {
			t.samples[n-1].at = at
			return
		}
	}
	t.samples = append(t.samples, sample{at, pos})
	cut := 0
	for cut < len(t.samples)-1 && at.Sub(t.samples[cut].at) > t.window {
		cut++
	}
	if cut > 0 {
		t.samples = append(t.samples[:0], t.samples[cut:]...)
	}
}

// Reset forgets every sample (after a promotion).
func (t *Tracker) Reset() {
	t.mu.Lock()
	t.samples = t.samples[:0]
	t.mu.Unlock()
}

// Last returns the newest primary sample.
func (t *Tracker) Last() (time.Time, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.samples) == 0 {
		return time.Time{}, 0, false
	}
	s := t.samples[len(t.samples)-1]
	return s.at, s.pos, true
}

// Lag returns how far a replica at position pos is behind the primary's
// last known position: in bytes, and in time (the age, at the last
// sample, of the oldest write the replica lacks: the data that would be
// lost). known is false when no primary sample exists.
func (t *Tracker) Lag(pos uint64) (bytes uint64, lag time.Duration, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.samples)
	if n == 0 {
		return 0, 0, false
	}
	last := t.samples[n-1]
	if pos >= last.pos {
		return 0, 0, true
	}
	bytes = last.pos - pos
	// The replica has everything the primary had at the newest sample
	// whose position is <= pos; what it lacks was written after that.
	for i := n - 1; i >= 0; i-- {
		if t.samples[i].pos <= pos {
			// The first write it lacks came after samples[i]: count from
			// there (an upper bound, within one probe interval).
			return bytes, last.at.Sub(t.samples[i].at), true
		}
	}
	// Behind the whole history: at least as old as the window we hold;
	// with a single sample (restored from the store) the age is unknown.
	if n == 1 {
		return bytes, 0, false
	}
	return bytes, last.at.Sub(t.samples[0].at), true
}
