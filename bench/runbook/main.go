// Command runbook-bench measures the runbook engine at fleet scale with the
// simulated fleet (driver.SimFleet, a test fixture) and a real embedded etcd
// store:
//
//	go run ./bench/runbook -mode run    # makespan against its lower bound, memory, store writes
//	go run ./bench/runbook -mode kill   # 3-member store, runner A stopped mid-run, B resumes
//
// The runbook has five steps over every server (power-on, inrush-limited per
// rack; then four more, two of them non-idempotent), so targets flow through
// the DAG individually. The lower bound is computed from the measured
// duration of every action: no schedule within the same limits could
// finish sooner.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/runbook"
)

func main() {
	var (
		mode     = flag.String("mode", "run", "run or kill")
		targets  = flag.Int("targets", 100000, "servers")
		sites    = flag.Int("sites", 10, "sites")
		racks    = flag.Int("racks", 100, "racks per site")
		global   = flag.Int("global", 2000, "global concurrency limit")
		perSite  = flag.Int("per-site", 400, "per-site limit")
		perRack  = flag.Int("power-per-rack", 4, "power-on actions per rack at once (inrush)")
		minLat   = flag.Duration("min", 50*time.Millisecond, "minimum action latency")
		maxLat   = flag.Duration("max", 200*time.Millisecond, "maximum action latency")
		failRate = flag.Float64("fail", 0.01, "transient failure rate")
		killAt   = flag.Float64("kill-at", 0.4, "kill mode: fraction done when runner A is stopped")
		dataDir  = flag.String("data", "bench/data", "where the generated runbook is written")
		flushIv  = flag.Duration("flush", runbook.DefaultFlushInterval, "journal flush interval")
		util     = flag.Bool("util", false, "print the number of actions in flight every second")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile to this file")
	)
	flag.Parse()
	flushInterval, showUtil = *flushIv, *util
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*mode, *targets, *sites, *racks, *global, *perSite, *perRack, *minLat, *maxLat, *failRate, *killAt, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "runbook-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var (
	flushInterval time.Duration
	showUtil      bool
)

func run(mode string, targets, sites, racks, global, perSite, perRack int, minLat, maxLat time.Duration, failRate, killAt float64, dataDir string) error {
	path, err := writeRunbook(dataDir, targets, sites, racks, global, perSite, perRack)
	if err != nil {
		return err
	}
	members := 1
	if mode == "kill" {
		members = 3
	}
	tmp, err := os.MkdirTemp("", "runbook-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	etcds, urls, err := startEtcd(tmp, members)
	if err != nil {
		return err
	}
	defer func() {
		for _, e := range etcds {
			if e != nil {
				e.Close()
			}
		}
	}()
	clients := make([]*clientv3.Client, members)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{urls[i]}, DialTimeout: 5 * time.Second, MaxCallSendMsgSize: 8 << 20})
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
	}

	var peakHeap atomic.Uint64
	stopMem := sampleMemory(&peakHeap)
	defer stopMem()

	t0 := time.Now()
	rb, files, err := runbook.Load(path)
	if err != nil {
		return err
	}
	parse := time.Since(t0)
	fleet := &driver.SimFleet{MinLatency: minLat, MaxLatency: maxLat, FailureRate: failRate}
	drivers := func(*runbook.Runbook) (driver.Registry, error) { return driver.Registry{"sim": fleet}, nil }
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	newRunner := func(c *clientv3.Client, owner string) *runbook.Runner {
		return &runbook.Runner{Journal: runbook.NewEtcdJournal(c), Drivers: drivers, Owner: owner, Logger: logger, FlushInterval: flushInterval,
			OnProgress: func(p runbook.Progress) {
				if showUtil {
					t := p.Totals()
					fmt.Printf("  %s running %d done %d\n", p.Updated.Format("15:04:05"), t.Running, t.Done)
				}
			}}
	}
	ctx := context.Background()
	a := newRunner(clients[0], "runner-a")
	id, err := a.Create(ctx, rb, files, runbook.Options{}, "bench")
	if err != nil {
		return err
	}
	plan, err := runbook.NewPlan(rb, runbook.Options{}, nil)
	if err != nil {
		return err
	}
	fmt.Printf("runbook: %d servers, %d sites x %d racks, %d items (%d steps); parse %s; file %s\n",
		len(rb.Servers), sites, racks, plan.Items(), len(rb.Steps), parse.Round(time.Millisecond), path)
	fmt.Printf("limits: global %d, per site %d, power-on per rack %d; latency %s-%s, transient failures %.1f%%\n",
		global, perSite, perRack, minLat, maxLat, failRate*100)

	start := time.Now()
	var res runbook.Result
	var durs []time.Duration
	flushes, records, actions := 0, 0, 0
	switch mode {
	case "run":
		res, err = a.Resume(ctx, id)
		if err != nil {
			return err
		}
		durs = res.Stats.Durations
		flushes, records, actions = res.Stats.Flushes, res.Stats.Records, res.Stats.Actions
	case "kill":
		actx, cancel := context.WithCancel(ctx)
		done := make(chan runbook.Result, 1)
		go func() { r, _ := a.Resume(actx, id); done <- r }()
		for {
			time.Sleep(50 * time.Millisecond)
			if p, ok := a.Snapshot(id); ok && float64(p.Totals().Done) >= killAt*float64(plan.Items()) {
				break
			}
		}
		cancel()
		ra := <-done
		killed := time.Since(start)
		etcds[0].Close()
		etcds[0] = nil
		j := runbook.NewEtcdJournal(clients[1])
		before, err := runbook.ReadProgress(ctx, j, id)
		if err != nil {
			return err
		}
		fmt.Printf("runner A stopped at %s with %d of %d items durable in the journal; member 1 closed\n",
			killed.Round(time.Millisecond), before.Totals().Done, plan.Items())
		b := newRunner(clients[1], "runner-b")
		tb := time.Now()
		res, err = b.Resume(ctx, id)
		if err != nil {
			return err
		}
		fmt.Printf("runner B (member 2) resumed and finished in %s: %d actions for %d items left\n",
			time.Since(tb).Round(time.Millisecond), res.Stats.Actions, plan.Items()-before.Totals().Done)
		durs = make([]time.Duration, plan.Items())
		for i := range durs {
			durs[i] = ra.Stats.Durations[i] + res.Stats.Durations[i]
		}
		flushes = ra.Stats.Flushes + res.Stats.Flushes
		records = ra.Stats.Records + res.Stats.Records
		actions = ra.Stats.Actions + res.Stats.Actions
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	makespan := time.Since(start)
	bound := plan.LowerBound(durs)
	t := res.Progress.Totals()
	fmt.Printf("status %s: %d/%d done, %d failed, %d blocked, %d retries\n", res.Status, t.Done, t.Total, t.Failed, t.Blocked, t.Retries)
	fmt.Printf("makespan %s; lower bound %s; ratio %.3f (%.1f%% over)\n", makespan.Round(time.Millisecond), bound,
		makespan.Seconds()/bound.Makespan.Seconds(), 100*(makespan.Seconds()/bound.Makespan.Seconds()-1))
	fmt.Printf("predicted by --dry-run estimate (mean latency): %s\n", predicted(plan, minLat, maxLat).Round(time.Millisecond))
	fmt.Printf("store: %d writes (%.1f/s), %d records (%.0f/s, %.0f per write)\n", flushes, float64(flushes)/makespan.Seconds(),
		records, float64(records)/makespan.Seconds(), float64(records)/float64(max(flushes, 1)))
	nonIdem, idem := 0, 0
	for _, sv := range rb.Servers {
		for _, ch := range []string{"firmware", "services"} {
			if fleet.Applied(sv.Name, ch) > 1 {
				nonIdem++
			}
		}
		for _, ch := range []string{"mount", "health"} {
			if fleet.Applied(sv.Name, ch) > 1 {
				idem++
			}
		}
	}
	fmt.Printf("fleet: %d actions started by runners, %d calls, %d injected failures\n", actions, fleet.Calls(), fleet.Failures())
	fmt.Printf("executed twice: %d non-idempotent actions (must be 0), %d idempotent ones (in flight at the kill, allowed)\n", nonIdem, idem)
	fmt.Printf("engine slot time lost: result handling %s, waiting for start records %s (%.2f%% of work)\n",
		res.Stats.ResultDelay.Round(time.Millisecond), res.Stats.StartWait.Round(time.Millisecond),
		100*(res.Stats.ResultDelay+res.Stats.StartWait).Seconds()/bound.Work.Seconds())
	fmt.Printf("memory: peak Go heap in use %d MiB, peak RSS (VmHWM, etcd in process) %d MiB\n", peakHeap.Load()>>20, vmHWM()>>10)
	if nonIdem != 0 {
		return errors.New("non-idempotent action executed twice")
	}
	if res.Status != runbook.StatusDone {
		return fmt.Errorf("run ended %s", res.Status)
	}
	return nil
}

func predicted(plan *runbook.Plan, minLat, maxLat time.Duration) time.Duration {
	durs := make([]time.Duration, plan.Items())
	for i := range durs {
		durs[i] = (minLat + maxLat) / 2
	}
	return plan.LowerBound(durs).Makespan
}

// writeRunbook generates the benchmark runbook with its inventory inline.
func writeRunbook(dir string, targets, sites, racks, global, perSite, perRack int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("runbook-%d.yaml", targets))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "runbook: bench-cold-start\nlimits: {global: %d, perSite: %d}\ninventory:\n  servers:\n", global, perSite)
	for i := 0; i < targets; i++ {
		site := i % sites
		rack := (i / sites) % racks
		fmt.Fprintf(w, "    - {name: srv%06d, site: s%02d, rack: r%03d, role: app, tier: %d}\n", i, site, rack, i%4)
	}
	steps := []struct {
		name, op, verify, change string
		idem                     bool
	}{
		{"power-on", "power-on", "power-state", "", true},
		{"firmware-check", "apply", "applied", "firmware", false},
		{"mount-storage", "apply", "applied", "mount", true},
		{"start-services", "apply", "applied", "services", false},
		{"health", "apply", "applied", "health", true},
	}
	w.WriteString("steps:\n")
	prev := ""
	for _, s := range steps {
		fmt.Fprintf(w, "  - name: %s\n    targets: {servers: {}}\n    idempotent: %v\n    retries: 5\n    backoff: 100ms\n    estimate: 125ms\n", s.name, s.idem)
		if s.change == "" {
			fmt.Fprintf(w, "    action: {driver: sim, op: %s}\n    verify: {driver: sim, op: %s}\n    limits: {perRack: %d}\n", s.op, s.verify, perRack)
		} else {
			fmt.Fprintf(w, "    action: {driver: sim, op: %s, params: {change: %s}}\n    verify: {driver: sim, op: %s, params: {change: %s}}\n", s.op, s.change, s.verify, s.change)
		}
		if prev != "" {
			fmt.Fprintf(w, "    dependsOn: [%s]\n", prev)
		}
		prev = s.name
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return path, f.Close()
}

func startEtcd(dir string, n int) ([]*embed.Etcd, []string, error) {
	const host = "127.0.40.9"
	var cfgs []*embed.Config
	var urls, initial []string
	for i := 0; i < n; i++ {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cu, _ := url.Parse(fmt.Sprintf("http://%s:%d", host, freePort(host)))
		pu, _ := url.Parse(fmt.Sprintf("http://%s:%d", host, freePort(host)))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.MaxRequestBytes = 8 << 20
		initial = append(initial, cfg.Name+"="+pu.String())
		urls = append(urls, cu.String())
		cfgs = append(cfgs, cfg)
	}
	var out []*embed.Etcd
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			return out, nil, err
		}
		out = append(out, e)
	}
	for _, e := range out {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			return out, nil, errors.New("etcd not ready")
		}
	}
	return out, urls, nil
}

func freePort(host string) int {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sampleMemory(peak *atomic.Uint64) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

// vmHWM returns the process's peak resident set in KiB (Linux).
func vmHWM() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
