// Command failover measures firebreak's detection path (issue #5).
//
//	go run ./bench/failover detect   [-trials 20] [-partition-trials 10]
//	go run ./bench/failover schedule [-n 100000] [-check noop|tcp] [-d 20s]
//
// detect runs three sites with real HTTP endpoints on 127.0.29.x, a prober
// per site's node and the decider on an embedded etcd (internal/decide/
// sitesim), with 1 s probes and rise/fall 2/2. Each death trial waits a
// random phase, kills one site's endpoint and times until the routing key
// changes (an etcd watch), then restores it and waits out the hold-down.
// Each partition trial cuts one observer off from every endpoint for
// several probe intervals and counts any routing change as a false
// failover.
//
// schedule loads one node's probe scheduler with n endpoints at a 1 s
// interval and reports the check rate achieved, lateness, CPU and memory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/probe"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: failover detect|schedule [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "detect":
		err = detect(os.Args[2:])
	case "schedule":
		err = schedule(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: expected detect or schedule", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func detect(args []string) error {
	fs := flag.NewFlagSet("detect", flag.ExitOnError)
	trials := fs.Int("trials", 20, "site death trials")
	ptrials := fs.Int("partition-trials", 10, "observer partition trials")
	interval := fs.Duration("interval", time.Second, "probe interval")
	holdDown := fs.Duration("holddown", 10*time.Second, "decider hold-down")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "failover-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	sim, err := sitesim.Start(sctx, sitesim.Config{IPs: []string{"127.0.29.1", "127.0.29.2", "127.0.29.3"}, Dir: dir,
		Interval: *interval, Timeout: *interval / 2, Rise: 2, Fall: 2, HoldDown: *holdDown})
	cancel()
	if err != nil {
		return err
	}
	defer sim.Close()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	var lat, decideLat []time.Duration
	for i := range *trials {
		site := sitesim.Site(i % 3)
		if err := waitHoldDown(ctx, sim, *holdDown); err != nil {
			return err
		}
		time.Sleep(time.Duration(r.Int64N(int64(*interval)))) // random phase against the probe schedule
		_, rev, err := sim.Route(ctx)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		wch := sim.Client.Watch(wctx, store.RoutingPrefix+sitesim.Service, clientv3.WithRev(rev+1))
		// Also watch observations: when the second observer's "down" lands
		// (a majority of three), detection is over and deciding begins.
		och := sim.Client.Watch(wctx, store.ObservationsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		majority := make(chan time.Time, 1)
		go func() {
			downs := 0
			for wr := range och {
				for _, ev := range wr.Events {
					var o probe.Observation
					if json.Unmarshal(ev.Kv.Value, &o) == nil && !o.Up && strings.Contains(o.Endpoint, "/"+site+"/") {
						if downs++; downs == 2 {
							majority <- time.Now()
						}
					}
				}
			}
			close(majority)
		}()
		start := time.Now()
		if err := sim.KillSite(site); err != nil {
			wcancel()
			return err
		}
		d, err := firstChange(wch, start)
		wcancel()
		if err != nil {
			return fmt.Errorf("trial %d (kill %s): %w", i, site, err)
		}
		var detect time.Duration
		if at, ok := <-majority; ok {
			detect = at.Sub(start)
			decideLat = append(decideLat, d-detect)
		}
		rt, _, _ := sim.Route(ctx)
		if rt == nil || sitesim.HasSite(rt, site) {
			return fmt.Errorf("trial %d: routing changed but still lists %s: %+v", i, site, rt)
		}
		lat = append(lat, d)
		fmt.Printf("death trial %2d: kill %s -> routing change in %v (majority of observers down after %v)\n", i+1, site,
			d.Round(time.Millisecond), detect.Round(time.Millisecond))
		if err := sim.RestoreSite(site); err != nil {
			return err
		}
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = sim.WaitRoute(rctx, func(r *routing.Route) bool { return len(r.Targets) == 3 })
		rcancel()
		if err != nil {
			return fmt.Errorf("trial %d: restore: %w", i, err)
		}
	}

	falseFailovers := 0
	for i := range *ptrials {
		node := sitesim.Node(i % 3)
		_, rev, err := sim.Route(ctx)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithCancel(ctx)
		wch := sim.Client.Watch(wctx, store.RoutingPrefix+sitesim.Service, clientv3.WithRev(rev+1))
		sim.Isolate(node, true)
		// Long enough for fall (2 probes) plus the decider, several times over.
		time.Sleep(5 * *interval)
		suspected := slices.Contains(sim.Decider.State().Suspected, node)
		sim.Isolate(node, false)
		time.Sleep(4 * *interval) // rise back, still watching routing
		wcancel()
		changes := 0
		for wr := range wch {
			changes += len(wr.Events)
		}
		if changes > 0 {
			falseFailovers++
		}
		fmt.Printf("partition trial %2d: observer %s cut off for %v: routing changes %d, suspected %v\n", i+1, node, 5**interval, changes, suspected)
	}

	slices.Sort(lat)
	fmt.Printf("\nsite death -> routing change, %d trials, %v probes, rise/fall 2/2:\n", len(lat), *interval)
	fmt.Printf("  min %v  p50 %v  p90 %v  p99 %v  max %v\n", lat[0].Round(time.Millisecond), pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[len(lat)-1].Round(time.Millisecond))
	if len(decideLat) > 0 {
		slices.Sort(decideLat)
		fmt.Printf("  of which store + decision (majority's \"down\" seen -> routing change seen): p50 %v  p99 %v  max %v\n",
			pct(decideLat, 50), pct(decideLat, 99), decideLat[len(decideLat)-1].Round(time.Millisecond))
	}
	fmt.Printf("false failovers in %d partition trials: %d\n", *ptrials, falseFailovers)
	return nil
}

// pct is the nearest-rank percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration {
	i := (p*len(d)+99)/100 - 1
	i = max(0, min(i, len(d)-1))
	return d[i].Round(time.Millisecond)
}

func firstChange(wch clientv3.WatchChan, start time.Time) (time.Duration, error) {
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return 0, err
		}
		if len(wr.Events) > 0 {
			return time.Since(start), nil
		}
	}
	return 0, errors.New("no routing change within 30s")
}

// waitHoldDown waits until the last routing change is older than holdDown,
// so the next removal is not dampened.
func waitHoldDown(ctx context.Context, sim *sitesim.Sim, holdDown time.Duration) error {
	r, _, err := sim.Route(ctx)
	if err != nil {
		return err
	}
	if d := time.Until(r.UpdatedAt.Add(holdDown + 50*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	return nil
}

func schedule(args []string) error {
	fs := flag.NewFlagSet("schedule", flag.ExitOnError)
	n := fs.Int("n", 100000, "endpoints")
	check := fs.String("check", "noop", "check type: noop (scheduler cost only) or tcp (connect to local listeners)")
	dur := fs.Duration("d", 20*time.Second, "measurement duration (after one warm-up interval)")
	workers := fs.Int("workers", probe.DefaultWorkers, "concurrent checks")
	listeners := fs.Int("listeners", 8, "tcp listeners (127.0.29.10+i)")
	fs.Parse(args)

	var mk func(i int) probe.Checker
	var lastErr atomic.Value
	lastErr.Store("")
	switch *check {
	case "noop":
		mk = func(int) probe.Checker { return probe.CheckerFunc(func(context.Context) error { return nil }) }
	case "tcp":
		var addrs []string
		for i := range *listeners {
			l, err := net.Listen("tcp", "127.0.29."+strconv.Itoa(10+i)+":0")
			if err != nil {
				return err
			}
			defer l.Close()
			go acceptLoop(l)
			addrs = append(addrs, l.Addr().String())
		}
		cs := probe.NewCheckers(nil)
		mk = func(i int) probe.Checker {
			host, port, _ := net.SplitHostPort(addrs[i%len(addrs)])
			p, _ := strconv.Atoi(port)
			c, _ := cs.New(topology.Check{Type: topology.CheckTCP}, &topology.Endpoint{Service: "s", Site: "a", Address: host, Port: p})
			return probe.CheckerFunc(func(ctx context.Context) error {
				err := c.Check(ctx)
				if err != nil {
					lastErr.Store(err.Error())
				}
				return err
			})
		}
	default:
		return fmt.Errorf("unknown check %q", *check)
	}
	var transitions atomic.Int64
	s := probe.NewScheduler(*workers, func(probe.Transition) { transitions.Add(1) })
	ts := make([]probe.Target, *n)
	for i := range ts {
		ts[i] = probe.Target{ID: fmt.Sprintf("svc%d/site%d/10.%d.%d.%d:80", i/100, i%3, (i>>16)&255, (i>>8)&255, i&255),
			Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, Checker: mk(i)}
	}
	s.Set(ts)
	ts = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	time.Sleep(2 * time.Second) // warm-up: first pass, settle hysteresis
	st0, ru0, t0 := s.Stats(), rusage(), time.Now()
	time.Sleep(*dur)
	st1, ru1, t1 := s.Stats(), rusage(), time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	cancel()
	<-done

	wall := t1.Sub(t0).Seconds()
	cpu := (ru1 - ru0).Seconds()
	checks := float64(st1.Checks - st0.Checks)
	fmt.Printf("scheduler: %d endpoints, 1s interval, check=%s, workers=%d, GOMAXPROCS=%d\n", *n, *check, *workers, runtime.GOMAXPROCS(0))
	fmt.Printf("  checks/s %.0f (target %d), failures %d, late (>10%% of interval) %d of %.0f, max lateness %v\n",
		checks/wall, *n, st1.Failures-st0.Failures, st1.Late-st0.Late, checks, st1.MaxLateness.Round(time.Millisecond))
	if e := lastErr.Load().(string); e != "" {
		fmt.Printf("  last check error: %s\n", e)
	}
	fmt.Printf("  CPU %.2f cores (user+sys), %.2f µs per check\n", cpu/wall, cpu/checks*1e6)
	fmt.Printf("  heap in use %.1f MiB, RSS %s, goroutines %d\n", float64(ms.HeapInuse)/(1<<20), rss(), goroutines)
	return nil
}

func acceptLoop(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		// Wait for the checker's reset rather than closing first: a server
		// reset racing the client's connect() on loopback fails the connect.
		go func() {
			var b [1]byte
			c.Read(b[:])
			c.Close()
		}()
	}
}

func rusage() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rss() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "?"
}
