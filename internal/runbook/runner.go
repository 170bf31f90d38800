package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/driver"
)

// Spec is what a run is started with, stored in the journal so that any
// node can rebuild the same plan.
type Spec struct {
	Runbook string `json:"runbook"`
	// File is the runbook's path; Files holds it and every file it refers
	// to, by path.
	File    string            `json:"file"`
	Files   map[string][]byte `json:"files"`
	Options Options           `json:"options"`
	Created time.Time         `json:"created"`
}

// Defaults of Runner fields.
const (
	DefaultFlushInterval = 50 * time.Millisecond
	DefaultMaxBatch      = 512
	maxFlushRecords      = 8192
	// maxInflight journal writes may be under way at once, so that the
	// store's latency does not cap the transition rate. Replay does not
	// depend on the order of batches: an item's start record is durable
	// before its action runs, and done and failed are final.
	maxInflight = 4
)

// Runner executes runs. It is leader-agnostic: Resume continues any run from
// its journal, whichever node started it. The zero value is not usable; set
// Journal and Drivers.
type Runner struct {
	// Journal persists runs (required).
	Journal Journal
	// Drivers returns the drivers for a runbook (required); BuildDrivers
	// builds the real ones from the runbook's drivers section.
	Drivers func(*Runbook) (driver.Registry, error)
	// Owner names this runner in claims (default host-pid-random).
	Owner string
	// Logger receives progress and errors (default slog.Default()).
	Logger *slog.Logger
	// FlushInterval is the longest a transition waits before being
	// written (default 50ms); MaxBatch the number of records that triggers
	// a write at once (default 512). A non-idempotent action's start
	// record is written at once, since the action waits for it.
	FlushInterval time.Duration
	MaxBatch      int
	// OnProgress, when set, is called every ProgressInterval (default 1s)
	// and at the end with the progress of each run this runner executes.
	// It must not block.
	OnProgress       func(Progress)
	ProgressInterval time.Duration

	mu       sync.Mutex
	progress map[string]Progress
}

// Result is what a finished run reports.
type Result struct {
	Status   string
	Progress Progress
	// Stats are the run's execution figures for this runner.
	Stats Stats
}

// Stats are execution figures of one Resume call.
type Stats struct {
	// Actions counts attempts started (verify-only resumptions included).
	Actions int
	// Flushes counts journal writes; Records the records they carried.
	Flushes, Records int
	// Elapsed is the wall time of the Resume call.
	Elapsed time.Duration
	// ResultDelay sums the time from an action's end to the runner
	// freeing its slots; StartWait the time non-idempotent actions held
	// their slots waiting for their start record to be written. Both are
	// slot time lost to the engine itself.
	ResultDelay, StartWait time.Duration
	// Durations is each item's summed attempt time, by item index (for
	// LowerBound).
	Durations []time.Duration
}

// Create stores a new run of rb (loaded with Load, files being what Load
// returned) and returns its id; id may be empty for a generated one. It
// checks that the plan builds.
func (r *Runner) Create(ctx context.Context, rb *Runbook, files map[string][]byte, opts Options, id string) (string, error) {
	regs, err := r.Drivers(rb)
	if err != nil {
		return "", err
	}
	if _, err := NewPlan(rb, opts, regs); err != nil {
		return "", err
	}
	if id == "" {
		id = fmt.Sprintf("%s-%s", rb.Name, time.Now().UTC().Format("20060102-150405"))
	}
	if !nameRE.MatchString(id) {
		return "", fmt.Errorf("run id %q: expected letters, digits, '-', '_', '.'", id)
	}
	spec := Spec{Runbook: rb.Name, File: rb.Source, Files: files, Options: opts, Created: time.Now().UTC()}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	if err := r.Journal.Create(ctx, id, data); err != nil {
		return "", err
	}
	return id, nil
}

// LoadRun rebuilds a run's runbook and plan from its spec in j.
func LoadRun(ctx context.Context, j Journal, id string, drivers func(*Runbook) (driver.Registry, error)) (*Spec, *Plan, error) {
	data, err := j.Spec(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, nil, fmt.Errorf("run %s: bad spec: %w", id, err)
	}
	src, ok := spec.Files[spec.File]
	if !ok {
		return nil, nil, fmt.Errorf("run %s: spec lacks the runbook file %s", id, spec.File)
	}
	rb, err := Parse(spec.File, src, FilesReader(spec.Files))
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", id, err)
	}
	var regs driver.Registry
	if drivers != nil {
		if regs, err = drivers(rb); err != nil {
			return nil, nil, err
		}
	}
	plan, err := NewPlan(rb, spec.Options, regs)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", id, err)
	}
	return &spec, plan, nil
}

// Snapshot returns the latest progress of a run this runner executes or
// executed, and whether there is one.
func (r *Runner) Snapshot(id string) (Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.progress[id]
	return p, ok
}

func (r *Runner) publish(p Progress) {
	r.mu.Lock()
	if r.progress == nil {
		r.progress = map[string]Progress{}
	}
	r.progress[p.RunID] = p
	r.mu.Unlock()
	if r.OnProgress != nil {
		r.OnProgress(p)
	}
}

func newOwner() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Resume claims run id and executes it from where its journal stops, until
// every target is done, failed or blocked, the run is aborted (ErrAborted),
// another runner claims it (ErrFenced), or ctx is done (ctx.Err()). Actions
// that were done are not repeated; idempotent actions that were in flight
// run again; a non-idempotent action that was in flight, or that failed, is
// first checked with its step's verification and run again only if that
// fails.
func (r *Runner) Resume(ctx context.Context, id string) (Result, error) {
	begin := time.Now()
	owner := r.Owner
	if owner == "" {
		owner = newOwner()
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	_, plan, err := LoadRun(ctx, r.Journal, id, r.Drivers)
	if err != nil {
		return Result{}, err
	}
	regs, err := r.Drivers(plan.Runbook)
	if err != nil {
		return Result{}, err
	}
	prev, err := r.Journal.State(ctx, id)
	if err != nil {
		return Result{}, err
	}
	switch prev.Status {
	case StatusDone, StatusFailed, StatusAborted:
		// Finished: nothing to claim or run.
		p, err := ReadProgress(ctx, r.Journal, id)
		return Result{Status: prev.Status, Progress: p}, err
	}
	seq, err := r.Journal.Claim(ctx, id, owner)
	if err != nil {
		return Result{}, err
	}
	started := prev.Started
	if started.IsZero() {
		started = time.Now().UTC()
	}
	ex := newExec(r, plan, regs, id, owner, seq, log)
	ex.progress.Started = started
	if err := ex.replay(ctx); err != nil {
		return Result{}, err
	}
	if err := r.Journal.SetState(ctx, id, owner, State{Status: StatusRunning, Owner: owner, Started: started, Updated: time.Now().UTC()}); err != nil {
		return Result{}, err
	}
	log.Info("runbook run resumed", "run", id, "owner", owner, "items", len(plan.items), "done", ex.terminal, "seq", seq)
	status, err := ex.loop(ctx)
	ex.stats.Elapsed = time.Since(begin)
	ex.stats.Durations = make([]time.Duration, len(ex.durs))
	for i, d := range ex.durs {
		ex.stats.Durations[i] = time.Duration(d) * time.Microsecond
	}
	p := ex.snapshot(status)
	r.publish(p)
	return Result{Status: status, Progress: p, Stats: ex.stats}, err
}

// Item states.
const (
	stWaiting   = iota // dependencies not yet met
	stReady            // queued
	stStarting         // start record being written
	stRunning          // action in progress
	stBackoff          // waiting to retry
	stDoneFlush        // done, record being written
	stFailFlush        // failed, record being written
	stDone
	stFailed
	stBlocked
)

type result struct {
	id  int32
	err error
	dur time.Duration
	end time.Time
}

type flushResult struct {
	err   error
	recs  []Record
	items []int32
}

// exec is one Resume call's state, owned by its loop goroutine.
type exec struct {
	r          *Runner
	plan       *Plan
	sched      *sched
	id, owner  string
	seq        uint64
	log        *slog.Logger
	actDrv     []driver.Driver
	verDrv     []driver.Driver
	status     []uint8
	attempts   []uint8
	pending    []int32
	verifyFrst []bool
	// startDurable: the item's start record is in the journal (from this
	// or an earlier runner); startLogged: it was queued for writing.
	startDurable, startLogged []bool
	startWaitFrom             map[int32]time.Time
	durs                      []uint32 // microseconds
	gremain                   []int32
	gfailed                   []bool
	terminal                  int
	running                   int
	timers                    pq // retry due times (unix nanos) by item

	buf      []Record
	bufItems []int32
	bufFirst time.Time
	urgent   bool
	inflight int // journal writes under way

	results   chan result
	flushDone chan flushResult
	wg        sync.WaitGroup

	progress Progress
	counts   []StepProgress
	rateFrom time.Time
	rateBase int
	stats    Stats
	paused   bool
	aborting bool
}

func newExec(r *Runner, plan *Plan, regs driver.Registry, id, owner string, seq uint64, log *slog.Logger) *exec {
	n := len(plan.items)
	ex := &exec{
		r: r, plan: plan, sched: newSched(plan), id: id, owner: owner, seq: seq, log: log,
		status: make([]uint8, n), attempts: make([]uint8, n), pending: make([]int32, n),
		verifyFrst: make([]bool, n), durs: make([]uint32, n),
		startDurable: make([]bool, n), startLogged: make([]bool, n), startWaitFrom: map[int32]time.Time{},
		gremain: make([]int32, len(plan.groups)), gfailed: make([]bool, len(plan.groups)),
		flushDone: make(chan flushResult, maxInflight),
	}
	global := 1
	if len(plan.Limiters) > 0 {
		global = plan.Limiters[0].Cap
	}
	ex.results = make(chan result, global+16)
	for _, ps := range plan.Steps {
		s := ps.Step
		d, _ := regs.Get(s.Action.Driver)
		ex.actDrv = append(ex.actDrv, d)
		var v driver.Driver
		if s.Verify != nil {
			v, _ = regs.Get(s.Verify.Driver)
		}
		ex.verDrv = append(ex.verDrv, v)
		ex.counts = append(ex.counts, StepProgress{Name: s.Name, Total: len(ps.Items)})
	}
	for g := range plan.groups {
		ex.gremain[g] = plan.groups[g].members
	}
	for i := range plan.items {
		ex.pending[i] = int32(len(plan.items[i].waits))
	}
	ex.progress = Progress{RunID: id, Runbook: plan.Runbook.Name}
	return ex
}

// replay applies the journal to the fresh state.
func (ex *exec) replay(ctx context.Context) error {
	var idx map[string]int32 // built at the first record: a new run has none
	started := make([]bool, len(ex.plan.items))
	_, err := ex.r.Journal.Read(ctx, ex.id, 0, func(_ uint64, batch []byte) error {
		return decodeBatch(batch, func(rec Record) error {
			if idx == nil {
				idx = make(map[string]int32, len(ex.plan.items))
				for i, it := range ex.plan.items {
					idx[itemKey(int(it.step), ex.plan.Targets[it.target].Name)] = int32(i)
				}
			}
			id, ok := idx[itemKey(rec.Step, rec.Target)]
			if !ok {
				return nil // filtered out or renamed; ignore
			}
			if rec.Attempt > int(ex.attempts[id]) {
				ex.attempts[id] = uint8(min(rec.Attempt, 255))
			}
			switch rec.Event {
			case EvStart:
				started[id] = true
			case EvDone:
				ex.status[id] = stDone
			case EvFail:
				ex.status[id] = stFailed
				ex.progress.Failures = addFailure(ex.progress.Failures, Failure{Step: ex.plan.Runbook.Steps[rec.Step].Name, Target: rec.Target, Final: true, Reason: rec.Msg})
			case EvRetry:
				started[id] = true
				ex.counts[rec.Step].Retries++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for i := range ex.plan.items {
		st := ex.plan.items[i].step
		ex.startDurable[i] = started[i]
		switch ex.status[i] {
		case stDone:
			ex.terminal++
			ex.counts[st].Done++
			for _, g := range ex.plan.items[i].memberOf {
				ex.gremain[g]--
				if ex.gremain[g] == 0 {
					for _, w := range ex.plan.groups[g].waiters {
						ex.pending[w]--
					}
				}
			}
		case stFailed:
			ex.terminal++
			ex.counts[st].Failed++
		default:
			if started[i] && !ex.plan.Runbook.Steps[st].Idempotent {
				ex.verifyFrst[i] = true
			}
		}
	}
	for i := range ex.plan.items {
		if ex.status[i] == stFailed {
			ex.cascade(int32(i))
		}
	}
	for i := range ex.plan.items {
		if ex.status[i] == stWaiting && ex.pending[i] == 0 {
			ex.makeReady(int32(i))
		}
	}
	ex.rateFrom, ex.rateBase = time.Now(), ex.terminal
	return nil
}

// makeReady queues item id. For a non-idempotent step, the first time, it
// also journals the start record now, so that it is usually durable by the
// time a slot frees and the action does not hold its slot waiting for it.
func (ex *exec) makeReady(id int32) {
	ex.status[id] = stReady
	if !ex.startDurable[id] && !ex.startLogged[id] && !ex.plan.Runbook.Steps[ex.plan.items[id].step].Idempotent {
		ex.startLogged[id] = true
		ex.record(EvStart, id, "", true)
	}
	ex.sched.ready(id)
}

func itemKey(step int, target string) string { return fmt.Sprintf("%d\x00%s", step, target) }

// cascade blocks every waiting item that depends, directly or not, on the
// failed item id.
func (ex *exec) cascade(id int32) {
	stack := []int32{id}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, g := range ex.plan.items[x].memberOf {
			if ex.gfailed[g] {
				continue
			}
			ex.gfailed[g] = true
			for _, w := range ex.plan.groups[g].waiters {
				if ex.status[w] == stWaiting {
					ex.status[w] = stBlocked
					ex.terminal++
					ex.counts[ex.plan.items[w].step].Blocked++
					stack = append(stack, w)
				}
			}
		}
	}
}

func (ex *exec) done(id int32) {
	ex.status[id] = stDone
	ex.terminal++
	ex.counts[ex.plan.items[id].step].Done++
	for _, g := range ex.plan.items[id].memberOf {
		ex.gremain[g]--
		if ex.gremain[g] == 0 && !ex.gfailed[g] {
			for _, w := range ex.plan.groups[g].waiters {
				ex.pending[w]--
				if ex.pending[w] == 0 && ex.status[w] == stWaiting {
					ex.makeReady(w)
				}
			}
		}
	}
}

func (ex *exec) record(ev byte, id int32, msg string, callback bool) {
	it := ex.plan.items[id]
	if len(ex.buf) == 0 {
		ex.bufFirst = time.Now()
	}
	ex.buf = append(ex.buf, Record{Event: ev, Step: int(it.step), Attempt: int(ex.attempts[id]), Target: ex.plan.Targets[it.target].Name, Msg: msg})
	if callback {
		ex.bufItems = append(ex.bufItems, id)
	} else {
		ex.bufItems = append(ex.bufItems, -1)
	}
}

func (ex *exec) maxBatch() int {
	if ex.r.MaxBatch > 0 {
		return ex.r.MaxBatch
	}
	return DefaultMaxBatch
}

func (ex *exec) interval() time.Duration {
	if ex.r.FlushInterval > 0 {
		return ex.r.FlushInterval
	}
	return DefaultFlushInterval
}

// maybeFlush starts a journal write when one is due and none is under way.
func (ex *exec) maybeFlush(ctx context.Context, force bool) {
	if ex.inflight >= maxInflight || len(ex.buf) == 0 {
		return
	}
	if !force && !ex.urgent && len(ex.buf) < ex.maxBatch() && time.Since(ex.bufFirst) < ex.interval() {
		return
	}
	n := min(len(ex.buf), maxFlushRecords)
	recs, items := ex.buf[:n:n], ex.bufItems[:n:n]
	ex.buf, ex.bufItems = ex.buf[n:], ex.bufItems[n:]
	if len(ex.buf) == 0 {
		ex.buf, ex.bufItems = nil, nil
	} else {
		ex.bufFirst = time.Now()
	}
	ex.urgent = false
	for i, id := range ex.bufItems {
		if id >= 0 && ex.buf[i].Event == EvStart && ex.status[id] == stStarting {
			ex.urgent = true
			break
		}
	}
	ex.inflight++
	seq := ex.seq
	ex.seq++
	ex.stats.Flushes++
	ex.stats.Records += len(recs)
	batch := encodeBatch(time.Now(), recs)
	ex.wg.Add(1)
	go func() {
		defer ex.wg.Done()
		var err error
		for attempt := 0; ; attempt++ {
			err = ex.r.Journal.Append(ctx, ex.id, ex.owner, seq, batch)
			if err == nil || errors.Is(err, ErrFenced) || ctx.Err() != nil || attempt >= 50 {
				break
			}
			ex.log.Warn("runbook journal write failed; retrying", "run", ex.id, "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		ex.flushDone <- flushResult{err: err, recs: recs, items: items}
	}()
}

// launch starts item id's attempt; its limiter slots are already taken.
func (ex *exec) launch(ctx context.Context, id int32) {
	ex.running++
	step := ex.plan.items[id].step
	ex.counts[step].Running++
	if ex.attempts[id] < 255 {
		ex.attempts[id]++
	}
	if !ex.plan.Runbook.Steps[step].Idempotent && !ex.startDurable[id] {
		// Its start record is queued or being written: wait for it,
		// and write it now.
		ex.status[id] = stStarting
		ex.startWaitFrom[id] = time.Now()
		ex.urgent = true
		return
	}
	ex.spawn(ctx, id)
}

func (ex *exec) spawn(ctx context.Context, id int32) {
	ex.status[id] = stRunning
	ex.stats.Actions++
	it := ex.plan.items[id]
	s := ex.plan.Runbook.Steps[it.step]
	t := *ex.plan.Targets[it.target]
	act, ver := ex.actDrv[it.step], ex.verDrv[it.step]
	verifyFirst := ex.verifyFrst[id]
	ex.wg.Add(1)
	go func() {
		defer ex.wg.Done()
		start := time.Now()
		err := attempt(ctx, s, t, act, ver, verifyFirst)
		end := time.Now()
		ex.results <- result{id: id, err: err, dur: end.Sub(start), end: end}
	}()
}

// attempt runs one attempt: an optional verification first (when the action
// may already have taken effect), the action, then the verification.
func attempt(ctx context.Context, s *Step, t driver.Target, act, ver driver.Driver, verifyFirst bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if verifyFirst && ver != nil {
		if ver.Do(ctx, t, s.Verify.Op, s.Verify.Params) == nil {
			return nil
		}
	}
	if err := act.Do(ctx, t, s.Action.Op, s.Action.Params); err != nil {
		return err
	}
	if ver == nil {
		return nil
	}
	deadline := time.Now().Add(s.Verify.Within)
	for {
		err := ver.Do(ctx, t, s.Verify.Op, s.Verify.Params)
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) || driver.IsPermanent(err) {
			return fmt.Errorf("verify: %w", err)
		}
		select {
		case <-time.After(s.Verify.Every):
		case <-ctx.Done():
			return fmt.Errorf("verify: %w", err)
		}
	}
}

func (ex *exec) handleResult(res result) {
	ex.sched.release(res.id)
	ex.stats.ResultDelay += time.Since(res.end)
	ex.running--
	it := ex.plan.items[res.id]
	ex.durs[res.id] += uint32(min(res.dur.Microseconds(), 1<<31))
	s := ex.plan.Runbook.Steps[it.step]
	if res.err == nil {
		ex.status[res.id] = stDoneFlush
		ex.record(EvDone, res.id, "", true)
		return
	}
	msg := res.err.Error()
	name := ex.plan.Targets[it.target].Name
	if driver.IsPermanent(res.err) || int(ex.attempts[res.id]) > s.Retries {
		ex.status[res.id] = stFailFlush
		ex.record(EvFail, res.id, msg, true)
		return
	}
	ex.counts[it.step].Running--
	ex.counts[it.step].Retries++
	ex.progress.Failures = addFailure(ex.progress.Failures, Failure{Step: s.Name, Target: name, Reason: msg})
	ex.record(EvRetry, res.id, msg, false)
	if !s.Idempotent {
		ex.verifyFrst[res.id] = true
	}
	ex.status[res.id] = stBackoff
	wait := s.Backoff << min(int(ex.attempts[res.id])-1, 20)
	if wait > s.MaxBackoff || wait <= 0 {
		wait = s.MaxBackoff
	}
	ex.timers.push(pqEntry{prio: time.Now().Add(wait).UnixNano(), id: res.id})
}

func (ex *exec) handleFlush(ctx context.Context, fr flushResult) {
	ex.inflight--
	for i, id := range fr.items {
		if id < 0 {
			continue
		}
		switch fr.recs[i].Event {
		case EvStart:
			ex.startDurable[id] = true
			if ex.status[id] == stStarting {
				ex.stats.StartWait += time.Since(ex.startWaitFrom[id])
				delete(ex.startWaitFrom, id)
				ex.spawn(ctx, id)
			}
		case EvDone:
			ex.counts[ex.plan.items[id].step].Running--
			ex.done(id)
		case EvFail:
			ex.status[id] = stFailed
			ex.terminal++
			st := ex.plan.items[id].step
			ex.counts[st].Running--
			ex.counts[st].Failed++
			ex.progress.Failures = addFailure(ex.progress.Failures, Failure{Step: ex.plan.Runbook.Steps[st].Name, Target: fr.recs[i].Target, Final: true, Reason: fr.recs[i].Msg})
			ex.cascade(id)
		}
	}
}

func (ex *exec) snapshot(status string) Progress {
	p := ex.progress
	p.Status = status
	p.Steps = append([]StepProgress(nil), ex.counts...)
	p.Failures = append([]Failure(nil), ex.progress.Failures...)
	p.Updated = time.Now().UTC()
	if n := ex.terminal - ex.rateBase; n > 0 {
		rate := float64(n) / time.Since(ex.rateFrom).Seconds()
		p.ETA = time.Duration(float64(len(ex.plan.items)-ex.terminal) / rate * float64(time.Second))
	}
	return p
}

func (ex *exec) setState(ctx context.Context, status, msg string) error {
	return ex.r.Journal.SetState(ctx, ex.id, ex.owner, State{Status: status, Owner: ex.owner, Started: ex.progress.Started, Updated: time.Now().UTC(), Message: msg})
}

// loop runs the event loop until the run ends.
func (ex *exec) loop(parent context.Context) (string, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	control := ex.r.Journal.WatchControl(ctx, ex.id)
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	every := ex.r.ProgressInterval
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	status := StatusRunning
	var runErr error
	total := len(ex.plan.items)
	for {
		// Start what may start.
		if !ex.paused && !ex.aborting && runErr == nil {
			for {
				id := ex.sched.next()
				if id < 0 {
					break
				}
				ex.launch(ctx, id)
			}
		}
		ex.maybeFlush(ctx, false)
		if runErr == nil && ex.running == 0 && ex.inflight == 0 && len(ex.buf) == 0 {
			if ex.terminal == total {
				status = StatusDone
				for _, c := range ex.counts {
					if c.Failed > 0 || c.Blocked > 0 {
						status = StatusFailed
					}
				}
				break
			}
			if ex.aborting {
				status, runErr = StatusAborted, ErrAborted
				break
			}
		}
		// Sleep until the next retry or flush is due.
		next := time.Hour
		if len(ex.timers) > 0 {
			next = min(next, time.Until(time.Unix(0, ex.timers[0].prio)))
		}
		if len(ex.buf) > 0 && ex.inflight < maxInflight {
			next = min(next, ex.interval()-time.Since(ex.bufFirst))
		}
		if next < 0 {
			next = 0
		}
		wake.Reset(next)
		select {
		case res := <-ex.results:
			ex.handleResult(res)
			// Take every result already there before starting more, so
			// that one pass of the scheduler serves many completions.
			for more := true; more; {
				select {
				case res := <-ex.results:
					ex.handleResult(res)
				default:
					more = false
				}
			}
		case fr := <-ex.flushDone:
			if fr.err != nil {
				ex.inflight--
				runErr = fr.err
				cancel()
				ex.log.Error("runbook journal write failed; stopping", "run", ex.id, "err", fr.err)
				drainControl(control)
				return ex.shutdown(parent, StatusRunning, runErr)
			}
			ex.handleFlush(ctx, fr)
		case <-wake.C:
		case cmd, ok := <-control:
			if !ok {
				control = nil
				continue
			}
			switch cmd {
			case ControlPause:
				if !ex.paused {
					ex.paused = true
					_ = ex.setState(ctx, StatusPaused, "paused by operator")
					ex.log.Info("runbook run paused", "run", ex.id)
				}
			case ControlRun:
				if ex.paused {
					ex.paused = false
					_ = ex.setState(ctx, StatusRunning, "resumed by operator")
					ex.log.Info("runbook run resumed by operator", "run", ex.id)
				}
			case ControlAbort:
				ex.aborting = true
				ex.log.Info("runbook run aborting", "run", ex.id)
			}
		case <-tick.C:
			st := StatusRunning
			if ex.paused {
				st = StatusPaused
			}
			ex.r.publish(ex.snapshot(st))
		case <-parent.Done():
			cancel()
			drainControl(control)
			return ex.shutdown(parent, StatusRunning, parent.Err())
		}
		// Retries whose backoff is over.
		now := time.Now().UnixNano()
		for len(ex.timers) > 0 && ex.timers[0].prio <= now {
			e := ex.timers.pop()
			ex.makeReady(e.id)
		}
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	if err := ex.setState(parent, status, msg); err != nil && runErr == nil {
		runErr = err
	}
	cancel()
	ex.wg.Wait()
	drainControl(control)
	ex.log.Info("runbook run finished", "run", ex.id, "status", status)
	return status, runErr
}

// drainControl waits for the control watch to end (its context is done).
func drainControl(ch <-chan string) {
	if ch == nil {
		return
	}
	for range ch {
	}
}

// shutdown waits for the run's goroutines after ctx was cancelled, writes
// what can still be written, and returns.
func (ex *exec) shutdown(parent context.Context, status string, err error) (string, error) {
	drained := make(chan struct{})
	go func() { ex.wg.Wait(); close(drained) }()
	for {
		select {
		case res := <-ex.results:
			// Completed actions are recorded if the store still takes
			// writes; cancelled ones are not.
			if res.err == nil {
				ex.record(EvDone, res.id, "", false)
			}
		case <-ex.flushDone:
			ex.inflight--
		case <-drained:
			if len(ex.buf) > 0 && !errors.Is(err, ErrFenced) {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 2*time.Second)
				_ = ex.r.Journal.Append(fctx, ex.id, ex.owner, ex.seq, encodeBatch(time.Now(), ex.buf))
				cancel()
			}
			ex.log.Info("runbook runner stopped", "run", ex.id, "err", err)
			return status, err
		}
	}
}
