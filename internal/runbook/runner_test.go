package runbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/driver"
)

// fleetRunbook writes a runbook over n simulated servers in two sites of two
// racks each (a quarter of them storage, the rest app) and loads it.
func fleetRunbook(t testing.TB, n int, extra string) (*Runbook, map[string][]byte) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `runbook: sim-cold-start
limits: {global: 40, perRack: 12}
inventory:
  servers:
`)
	for i := 0; i < n; i++ {
		role := "app"
		if i%8 < 2 {
			role = "storage"
		}
		fmt.Fprintf(&b, "    - {name: s%03d, site: site%d, rack: r%d, role: %s}\n", i, i%2, (i/2)%2, role)
	}
	b.WriteString(`steps:
  - name: power
    action: {driver: sim, op: power-on}
    verify: {driver: sim, op: power-state, params: {state: "On"}}
    targets: {servers: {}}
    idempotent: true
    limits: {perRack: 4}
    backoff: 1ms
  - name: storage
    dependsOn: [power]
    action: {driver: check, op: apply, params: {change: storage}}
    verify: {driver: sim, op: applied, params: {change: storage}}
    targets: {servers: {roles: [storage]}}
    backoff: 1ms
  - name: app
    dependsOn: [power, {step: storage, scope: site}]
    action: {driver: check, op: apply, params: {change: app}}
    verify: {driver: sim, op: applied, params: {change: app}}
    targets: {servers: {roles: [app]}}
    retries: 6
    backoff: 1ms
`)
	b.WriteString(extra)
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, files, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return rb, files
}

// orderCheck wraps the fleet and checks, at every apply, that the target is
// powered on and, for app, that every storage server of its site is up.
type orderCheck struct {
	fleet   *driver.SimFleet
	rb      *Runbook
	mu      sync.Mutex
	errs    []string
	fail    func(t driver.Target, p driver.Params) error
	blocked atomic.Bool // set while the run must not act
}

func (c *orderCheck) Do(ctx context.Context, t driver.Target, op string, p driver.Params) error {
	if c.blocked.Load() {
		c.report("action on %s while paused", t.Name)
	}
	if !c.fleet.Power(t.Name) {
		c.report("%s %s before power-on", p["change"], t.Name)
	}
	if p["change"] == "app" {
		for _, s := range c.rb.Servers {
			if s.Site == t.Site && s.Role == "storage" && c.fleet.Applied(s.Name, "storage") == 0 {
				c.report("app on %s before storage on %s", t.Name, s.Name)
			}
		}
	}
	if c.fail != nil {
		if err := c.fail(t, p); err != nil {
			return err
		}
	}
	return c.fleet.Do(ctx, t, op, p)
}

func (c *orderCheck) report(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *orderCheck) Ops() []string { return []string{"apply"} }

func newTestRunner(t testing.TB, j Journal, fleet *driver.SimFleet, check *orderCheck) *Runner {
	return &Runner{
		Journal:          j,
		Drivers:          func(*Runbook) (driver.Registry, error) { return driver.Registry{"sim": fleet, "check": check}, nil },
		FlushInterval:    5 * time.Millisecond,
		ProgressInterval: 20 * time.Millisecond,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

func TestRunCompletesInOrder(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 48, "")
	fleet := &driver.SimFleet{MinLatency: time.Millisecond, MaxLatency: 3 * time.Millisecond, FailureRate: 0.1}
	check := &orderCheck{fleet: fleet, rb: rb}
	r := newTestRunner(t, j, fleet, check)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := r.Create(ctx, rb, files, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resume(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDone {
		t.Fatalf("status %s: %s", res.Status, res.Progress.Line())
	}
	if len(check.errs) > 0 {
		t.Fatalf("order violated: %v", check.errs[:min(5, len(check.errs))])
	}
	if fleet.Repeated() != 0 {
		t.Fatalf("%d non-idempotent changes applied twice", fleet.Repeated())
	}
	for _, s := range rb.Servers {
		if fleet.Applied(s.Name, s.Role) != 1 || !fleet.Power(s.Name) {
			t.Fatalf("%s: applied %d, power %v", s.Name, fleet.Applied(s.Name, s.Role), fleet.Power(s.Name))
		}
	}
	tot := res.Progress.Totals()
	if tot.Done != 96 || tot.Total != 96 || tot.Running != 0 {
		t.Fatalf("totals %+v", tot)
	}
	// The journal alone tells the same story.
	p, err := ReadProgress(ctx, j, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != StatusDone || p.Totals().Done != 96 {
		t.Fatalf("journal progress: %s", p.Line())
	}
	checkNoRunnerGoroutines(t)
	// Resuming a finished run does nothing.
	calls := fleet.Calls()
	res, err = r.Resume(ctx, id)
	if err != nil || res.Status != StatusDone || fleet.Calls() != calls {
		t.Fatalf("second resume: %v %s, %d new calls", err, res.Status, fleet.Calls()-calls)
	}
}

func TestPermanentFailureBlocksDependants(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 16, "")
	fleet := &driver.SimFleet{}
	check := &orderCheck{fleet: fleet, rb: rb, fail: func(t driver.Target, p driver.Params) error {
		if t.Name == "s000" && p["change"] == "storage" {
			return driver.Permanent(errors.New("disk controller missing"))
		}
		return nil
	}}
	r := newTestRunner(t, j, fleet, check)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := r.Create(ctx, rb, files, Options{}, "perm")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resume(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusFailed {
		t.Fatalf("status %s, want failed", res.Status)
	}
	// s000 is in site0: site0's app servers are blocked, site1's are done.
	app := res.Progress.Steps[2]
	if app.Blocked != 6 || app.Done != 6 || res.Progress.Steps[1].Failed != 1 {
		t.Fatalf("app step %+v, storage %+v", app, res.Progress.Steps[1])
	}
	found := false
	for _, f := range res.Progress.Failures {
		if f.Final && f.Target == "s000" && strings.Contains(f.Reason, "disk controller missing") {
			found = true
		}
	}
	if !found {
		t.Fatalf("failure reason missing: %+v", res.Progress.Failures)
	}
	st, _ := j.State(ctx, id)
	if st.Status != StatusFailed {
		t.Fatalf("stored state %+v", st)
	}
}

func TestPauseResumeAbort(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 120, "")
	fleet := &driver.SimFleet{MinLatency: 20 * time.Millisecond, MaxLatency: 30 * time.Millisecond}
	check := &orderCheck{fleet: fleet, rb: rb}
	r := newTestRunner(t, j, fleet, check)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := r.Create(ctx, rb, files, Options{MaxParallel: 2}, "pause")
	if err != nil {
		t.Fatal(err)
	}
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() { res, err := r.Resume(ctx, id); done <- out{res, err} }()
	waitFor(t, func() bool { p, ok := r.Snapshot(id); return ok && p.Totals().Done > 10 })
	if err := j.SetControl(ctx, id, ControlPause); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { p, ok := r.Snapshot(id); return ok && p.Status == StatusPaused && p.Totals().Running == 0 })
	check.blocked.Store(true)
	p, _ := r.Snapshot(id)
	waitFor(t, func() bool { q, _ := r.Snapshot(id); return q.Updated.After(p.Updated) })
	if q, _ := r.Snapshot(id); q.Totals().Done != p.Totals().Done {
		t.Fatalf("progress while paused: %d -> %d", p.Totals().Done, q.Totals().Done)
	}
	st, _ := j.State(ctx, id)
	if st.Status != StatusPaused {
		t.Fatalf("stored state %+v, want paused", st)
	}
	check.blocked.Store(false)
	if err := j.SetControl(ctx, id, ControlRun); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		q, _ := r.Snapshot(id)
		return q.Status == StatusRunning && q.Totals().Done > p.Totals().Done
	})
	if err := j.SetControl(ctx, id, ControlAbort); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if !errors.Is(o.err, ErrAborted) || o.res.Status != StatusAborted {
		t.Fatalf("abort: %v %s", o.err, o.res.Status)
	}
	if o.res.Progress.Totals().Done == o.res.Progress.Totals().Total {
		t.Fatal("run finished before the abort; make it longer")
	}
	if len(check.errs) > 0 {
		t.Fatalf("violations: %v", check.errs)
	}
}

// TestResumeAfterLeaderLoss is the leader-kill scenario at unit-test scale:
// three etcd members, runner A on member 0 stopped mid-run and member 0
// closed, runner B on member 1 resumes. Nothing done is redone and no
// non-idempotent change is applied twice.
func TestResumeAfterLeaderLoss(t *testing.T) {
	cl := startCluster(t, 3)
	rb, files := fleetRunbook(t, 200, "")
	fleet := &driver.SimFleet{MinLatency: 5 * time.Millisecond, MaxLatency: 15 * time.Millisecond, FailureRate: 0.02}
	check := &orderCheck{fleet: fleet, rb: rb}
	ja := NewEtcdJournal(cl.client(t, 0))
	a := newTestRunner(t, ja, fleet, check)
	a.Owner = "runner-a"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	id, err := a.Create(ctx, rb, files, Options{MaxParallel: 8}, "kill")
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() { _, err := a.Resume(actx, id); aDone <- err }()
	waitFor(t, func() bool { p, ok := a.Snapshot(id); return ok && p.Totals().Done > 100 })
	acancel()
	if err := <-aDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("runner A: %v", err)
	}
	cl.close(0)

	jb := NewEtcdJournal(cl.client(t, 1))
	before, err := ReadProgress(ctx, jb, id)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestRunner(t, jb, fleet, check)
	b.Owner = "runner-b"
	res, err := b.Resume(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDone {
		t.Fatalf("status %s", res.Status)
	}
	if fleet.Repeated() != 0 {
		t.Fatalf("%d non-idempotent changes applied twice", fleet.Repeated())
	}
	total := res.Progress.Totals().Total
	doneBefore := before.Totals().Done
	if doneBefore < 100 {
		t.Fatalf("only %d done before the kill were journaled", doneBefore)
	}
	// B acts on what was not done, plus retries; nothing durable is redone.
	if res.Stats.Actions > (total-doneBefore)*3 {
		t.Fatalf("B ran %d actions for %d remaining items", res.Stats.Actions, total-doneBefore)
	}
	for _, s := range rb.Servers {
		if fleet.Applied(s.Name, s.Role) != 1 {
			t.Fatalf("%s applied %d times", s.Name, fleet.Applied(s.Name, s.Role))
		}
	}
	if len(check.errs) > 0 {
		t.Fatalf("violations: %v", check.errs[:min(5, len(check.errs))])
	}
}

func TestFencedRunnerStops(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 400, "")
	fleet := &driver.SimFleet{MinLatency: 2 * time.Millisecond, MaxLatency: 4 * time.Millisecond}
	check := &orderCheck{fleet: fleet, rb: rb}
	a := newTestRunner(t, j, fleet, check)
	a.Owner = "a"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := a.Create(ctx, rb, files, Options{MaxParallel: 4}, "fence")
	if err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { _, err := a.Resume(ctx, id); aDone <- err }()
	waitFor(t, func() bool { p, ok := a.Snapshot(id); return ok && p.Totals().Done > 5 })
	if _, err := j.Claim(ctx, id, "b"); err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; !errors.Is(err, ErrFenced) {
		t.Fatalf("runner A after losing its claim: %v, want ErrFenced", err)
	}
	checkNoRunnerGoroutines(t)
}

// checkNoRunnerGoroutines fails if a goroutine of a runner outlived Resume.
// A goroutine that has already called wg.Done may still be on its way out
// when Resume returns, so the check allows it a moment to finish.
func checkNoRunnerGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		leak := runnerGoroutine()
		if leak == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaked goroutine:\n%s", leak)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runnerGoroutine returns the stack of a live runner goroutine, or "".
func runnerGoroutine() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/runbook.(*exec)") || strings.Contains(g, "internal/runbook.(*EtcdJournal).WatchControl") {
			return g
		}
	}
	return ""
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResumeUnfinished(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 12, "")
	fleet := &driver.SimFleet{}
	r := newTestRunner(t, j, fleet, &orderCheck{fleet: fleet, rb: rb})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done, err := r.Create(ctx, rb, files, Options{}, "done")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resume(ctx, done); err != nil {
		t.Fatal(err)
	}
	calls := fleet.Calls()
	for _, id := range []string{"u1", "u2"} {
		if _, err := r.Create(ctx, rb, files, Options{Only: []string{"site=site0"}}, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.ResumeUnfinished(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"done", "u1", "u2"} {
		st, err := j.State(ctx, id)
		if err != nil || st.Status != StatusDone {
			t.Fatalf("%s: %+v %v", id, st, err)
		}
	}
	if fleet.Calls() == calls {
		t.Fatal("unfinished runs did not run")
	}
}
