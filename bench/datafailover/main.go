// Command datafailover measures firebreak's PostgreSQL failover on real
// servers: for each trial it starts a primary and a streaming replica (sync
// or async) on loopback, runs a writer that follows the datastore's routing
// entry in etcd, SIGKILLs the primary's process group, detects the death
// with probes every -probe (down after -fall failures in a row), runs the
// failover procedure, and records
//
//   - time from the kill to the first write acknowledged by the new primary,
//   - how many acknowledged rows the new primary lacks (data lost).
//
// Usage (as root it runs PostgreSQL as the postgres user):
//
//	go run ./bench/datafailover -trials 10 -modes sync,async
//
// Results are recorded in docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
	"github.com/firebreak/firebreak/internal/failover/pg"
	"github.com/firebreak/firebreak/internal/topology"
)

type trial struct {
	Mode             string        `json:"mode"`
	Trial            int           `json:"trial"`
	KillToDown       time.Duration `json:"killToDown"` // detection
	Procedure        time.Duration `json:"procedure"`  // fence + promote + route
	KillToFirstWrite time.Duration `json:"killToFirstWrite"`
	Acked            int           `json:"acked"` // rows acknowledged before the kill
	Lost             int           `json:"lost"`  // of those, missing on the new primary
	Err              string        `json:"err,omitempty"`
}

func main() {
	trials := flag.Int("trials", 10, "trials per mode")
	modes := flag.String("modes", "sync,async", "replica modes to measure")
	probe := flag.Duration("probe", time.Second, "probe interval of the death detector and the readiness monitor")
	fall := flag.Int("fall", 2, "failed probes in a row that mean down")
	probeTimeout := flag.Duration("probe-timeout", 500*time.Millisecond, "timeout of one probe")
	jsonOut := flag.String("json", "", "write every trial as JSON to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	etcd, err := harness.StartEtcd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer etcd.Close()
	var all []trial
	for _, mode := range strings.Split(*modes, ",") {
		for i := 1; i <= *trials && ctx.Err() == nil; i++ {
			tr := runTrial(ctx, etcd.Client, mode, i, *probe, *probeTimeout, *fall)
			all = append(all, tr)
			fmt.Fprintf(os.Stderr, "%s #%d: kill->down %s, procedure %s, kill->first write %s, acked %d, lost %d %s\n",
				mode, i, tr.KillToDown.Round(time.Millisecond), tr.Procedure.Round(time.Millisecond),
				tr.KillToFirstWrite.Round(time.Millisecond), tr.Acked, tr.Lost, tr.Err)
		}
	}
	fmt.Printf("PostgreSQL failover, %d trials per mode, probes every %s, down after %d failures (timeout %s)\n\n", *trials, *probe, *fall, *probeTimeout)
	fmt.Println("| replica | kill→first write p50 | p99 | max | detection p50 | procedure p50 | p99 | rows acked | rows lost (total, worst trial) | errors |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, mode := range strings.Split(*modes, ",") {
		var w, d, p []time.Duration
		acked, lost, worst, errs := 0, 0, 0, 0
		for _, tr := range all {
			if tr.Mode != mode {
				continue
			}
			if tr.Err != "" {
				errs++
				continue
			}
			w, d, p = append(w, tr.KillToFirstWrite), append(d, tr.KillToDown), append(p, tr.Procedure)
			acked += tr.Acked
			lost += tr.Lost
			worst = max(worst, tr.Lost)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %d | %d, %d | %d |\n", mode,
			pct(w, 50), pct(w, 99), pct(w, 100), pct(d, 50), pct(p, 50), pct(p, 99), acked, lost, worst, errs)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		_ = os.WriteFile(*jsonOut, b, 0o644)
	}
}

// pct returns the nearest-rank percentile.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (p*len(s)+99)/100 - 1
	idx = min(max(idx, 0), len(s)-1)
	return s[idx].Round(10 * time.Millisecond).String()
}

func runTrial(parent context.Context, cli *clientv3.Client, mode string, n int, probe, probeTimeout time.Duration, fall int) (tr trial) {
	tr = trial{Mode: mode, Trial: n}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	c, err := harness.StartPG(ctx, harness.PGOptions{Replicas: []harness.PGReplicaSpec{{Name: "ansan", Sync: mode == "sync"}}})
	if err != nil {
		tr.Err = err.Error()
		return tr
	}
	defer c.Close()
	if err := c.Primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
		tr.Err = err.Error()
		return tr
	}
	ds := &topology.Datastore{Name: fmt.Sprintf("bench-%s-%d-%d", mode, n, time.Now().UnixNano()), Engine: "postgres",
		Primary: "pangyo", Address: c.Primary.Host, Port: c.Primary.Port, RPO: 0,
		Replicas: []topology.Replica{{Site: "ansan", Mode: mode, Address: c.Replicas[0].Host, Port: c.Replicas[0].Port}}}
	if mode == "async" {
		ds.RPO = 5 * time.Second
	}
	var downMu sync.Mutex
	down := false
	eng := pg.New(pg.Options{SSLMode: "disable", ConnectTimeout: probeTimeout})
	m, err := failover.New(failover.Config{
		Datastore: ds, Engine: eng, Client: cli, Who: "bench",
		SiteDown: func(_ context.Context, site string) (bool, error) {
			downMu.Lock()
			defer downMu.Unlock()
			return site == "pangyo" && down, nil
		},
		// The primary's "site" is gone: power-off is confirmed when its
		// processes are.
		Fencer: failover.FencerFunc(func(context.Context, failover.Member) error {
			if c.Primary.Running() {
				return fmt.Errorf("still running")
			}
			return nil
		}),
		Interval: probe, ProbeTimeout: probeTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tr.Err = err.Error()
		return tr
	}
	var wg sync.WaitGroup
	defer func() {
		cancel() // every early return stops the goroutines first
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = m.Run(ctx)
	}()

	w := &writer{cli: cli, ds: ds}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(ctx)
	}()
	// Detector: probes every interval from before the kill (so the kill
	// falls at a random phase); down after fall failures in a row.
	detected := make(chan time.Time, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(probe)
		defer tick.Stop()
		fails := 0
		for fails < fall {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pctx, pc := context.WithTimeout(ctx, probeTimeout)
			_, err := eng.Probe(pctx, failover.Member{Address: c.Primary.Host, Port: c.Primary.Port})
			pc()
			if err != nil {
				fails++
			} else {
				fails = 0
			}
		}
		downMu.Lock()
		down = true
		downMu.Unlock()
		detected <- time.Now()
	}()
	// Write for 2-3 s (a random phase against the probes), then kill.
	time.Sleep(2*time.Second + rand.N(time.Second))
	c.Primary.Kill()
	killed := time.Now()
	var downAt time.Time
	select {
	case downAt = <-detected:
	case <-time.After(30 * time.Second):
		tr.Err = "death not detected in 30s"
		return tr
	}
	tr.KillToDown = downAt.Sub(killed)
	fctx, fc := context.WithTimeout(ctx, 60*time.Second)
	res, err := m.Failover(fctx, failover.Request{Reason: "bench: primary killed"})
	fc()
	if err != nil {
		tr.Err = err.Error() + " [" + strings.Join(res.Decision.Notes, "; ") + "]"
		return tr
	}
	tr.Procedure = res.Total
	// Wait for the writer's first acknowledged write after the kill.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if at, ok := w.firstAfter(killed); ok {
			tr.KillToFirstWrite = at.Sub(killed)
			break
		}
		if time.Now().After(deadline) {
			tr.Err = "no write accepted 30s after the failover"
			return tr
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	ackedBefore := w.sentBefore(killed)
	tr.Acked = len(ackedBefore)
	got, err := c.Replicas[0].QueryInt(context.Background(), "SELECT count(*) FROM t WHERE id = ANY($1)", ackedBefore)
	if err != nil {
		tr.Err = err.Error()
		return tr
	}
	tr.Lost = len(ackedBefore) - int(got)
	return tr
}

// writer inserts rows into the datastore's current primary, found through
// its routing entry, and remembers when each was acknowledged.
type writer struct {
	cli    *clientv3.Client
	ds     *topology.Datastore
	mu     sync.Mutex
	ids    []int
	starts []time.Time // when the INSERT was sent
	ats    []time.Time // when it was acknowledged
}

func (w *writer) run(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for id := 1; ctx.Err() == nil; id++ {
		if conn == nil {
			host, port := w.ds.Address, w.ds.Port
			if r, err := failover.ReadRoute(ctx, w.cli, w.ds.Name); err == nil && r != nil && len(r.Targets) > 0 {
				host, port = r.Targets[0].Address, r.Targets[0].Port
			}
			cfg, err := pgx.ParseConfig("user=postgres dbname=postgres sslmode=disable connect_timeout=1")
			if err != nil {
				return
			}
			cfg.Host, cfg.Port = host, uint16(port)
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			conn = c
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", id); err != nil {
			conn.Close(context.Background())
			conn = nil
			time.Sleep(5 * time.Millisecond)
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.ids, w.starts, w.ats = append(w.ids, id), append(w.starts, start), append(w.ats, now)
		w.mu.Unlock()
	}
}

// sentBefore returns the acknowledged rows sent before t (to the old
// primary: routing flips only after the failover).
func (w *writer) sentBefore(t time.Time) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for i, st := range w.starts {
		if st.Before(t) {
			out = append(out, w.ids[i])
		}
	}
	return out
}

// firstAfter returns when the first write sent after t was acknowledged.
func (w *writer) firstAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, st := range w.starts {
		if st.After(t) {
			return w.ats[i], true
		}
	}
	return time.Time{}, false
}
