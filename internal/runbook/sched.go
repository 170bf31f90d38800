package runbook

// The scheduler: items whose waits are satisfied are queued in buckets (one
// per step, site and rack, so that every item of a bucket is subject to the
// same limiters). A global heap orders the buckets by the priority of their
// best item. A bucket whose limiter is full is parked on that limiter and
// leaves the heap, so it never blocks the buckets behind it (no head-of-line
// blocking); when the limiter frees a slot, its best parked buckets return.
// Heap entries are invalidated lazily by a per-bucket version.

type pqEntry struct {
	prio int64
	id   int32
	ver  int32
}

// pq is a binary min-heap of entries by (prio, id).
type pq []pqEntry

func (h pq) less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio < h[j].prio
	}
	return h[i].id < h[j].id
}

func (h *pq) push(e pqEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pq) pop() pqEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

const (
	bucketIdle   = 0
	bucketQueued = 1
	bucketParked = 2
)

type bucketState struct {
	items pq // ready items by (prio, id)
	ver   int32
	state int8
}

type limiterState struct {
	cap, inUse int
	parked     pq // buckets parked on this limiter
}

// sched holds the ready queue. It is owned by the runner's loop goroutine.
type sched struct {
	plan     *Plan
	buckets  []bucketState
	limiters []limiterState
	heap     pq // queued buckets
}

func newSched(p *Plan) *sched {
	s := &sched{plan: p, buckets: make([]bucketState, len(p.buckets)), limiters: make([]limiterState, len(p.Limiters))}
	for i, l := range p.Limiters {
		s.limiters[i].cap = l.Cap
	}
	return s
}

func (s *sched) itemPrio(id int32) int64 {
	return int64(s.plan.items[id].prio)
}

// ready queues item id.
func (s *sched) ready(id int32) {
	bi := s.plan.items[id].bucket
	b := &s.buckets[bi]
	prio := s.itemPrio(id)
	better := len(b.items) == 0 || prio < b.items[0].prio || (prio == b.items[0].prio && id < b.items[0].id)
	b.items.push(pqEntry{prio: prio, id: id})
	switch {
	case b.state == bucketIdle:
		b.state = bucketQueued
		b.ver++
		s.heap.push(pqEntry{prio: prio, id: bi, ver: b.ver})
	case b.state == bucketQueued && better:
		b.ver++
		s.heap.push(pqEntry{prio: prio, id: bi, ver: b.ver})
	}
}

// blockedBy returns the first full limiter of bucket bi, or -1.
func (s *sched) blockedBy(bi int32) int32 {
	for _, l := range s.plan.buckets[bi].limiters {
		ls := &s.limiters[l]
		if ls.inUse >= ls.cap {
			return l
		}
	}
	return -1
}

func (s *sched) park(bi, l int32) {
	b := &s.buckets[bi]
	b.state = bucketParked
	b.ver++
	s.limiters[l].parked.push(pqEntry{prio: b.items[0].prio, id: bi, ver: b.ver})
}

// next returns the best item that may start now and takes its limiter
// slots, or -1 when none may.
func (s *sched) next() int32 {
	for len(s.heap) > 0 && !s.full() {
		e := s.heap[0]
		b := &s.buckets[e.id]
		if b.state != bucketQueued || b.ver != e.ver {
			s.heap.pop()
			continue
		}
		if l := s.blockedBy(e.id); l >= 0 {
			s.heap.pop()
			s.park(e.id, l)
			continue
		}
		s.heap.pop()
		it := b.items.pop()
		for _, l := range s.plan.buckets[e.id].limiters {
			s.limiters[l].inUse++
		}
		b.ver++
		if len(b.items) == 0 {
			b.state = bucketIdle
		} else {
			s.heap.push(pqEntry{prio: b.items[0].prio, id: e.id, ver: b.ver})
		}
		return it.id
	}
	return -1
}

// release frees item id's limiter slots and returns parked buckets that may
// run again to the heap.
func (s *sched) release(id int32) {
	bi := s.plan.items[id].bucket
	for _, l := range s.plan.buckets[bi].limiters {
		ls := &s.limiters[l]
		ls.inUse--
		free := ls.cap - ls.inUse
		for free > 0 && len(ls.parked) > 0 {
			e := ls.parked.pop()
			b := &s.buckets[e.id]
			if b.state != bucketParked || b.ver != e.ver {
				continue
			}
			if m := s.blockedBy(e.id); m >= 0 {
				s.park(e.id, m)
				continue
			}
			b.state = bucketQueued
			b.ver++
			s.heap.push(pqEntry{prio: b.items[0].prio, id: e.id, ver: b.ver})
			free--
		}
	}
}

// full reports whether limiter 0 (global) has no free slot.
func (s *sched) full() bool {
	return len(s.limiters) > 0 && s.limiters[0].inUse >= s.limiters[0].cap
}
