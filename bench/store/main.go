// Command store measures firebreak's control plane on a real 3-member
// embedded etcd cluster on loopback (127.0.10.1-3):
//
//   - leader failover: the firebreak leader's node is killed (in-process,
//     like kill -9: no resignation, its lease expires by itself); the time
//     until a surviving node holds the election, and until every survivor
//     agrees on it, is recorded; the node is restarted from its data dir and
//     the next round starts;
//   - write rate: observation transitions written under a node's lease by
//     concurrent writers, as probers do after a site loss.
//
// Run it with bench/store/run.sh; results go to docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

func main() {
	kills := flag.Int("kills", 20, "leader kills")
	ttl := flag.Duration("ttl", 3*time.Second, "lease TTL")
	writes := flag.Int("writes", 20000, "observation transitions to write")
	writers := flag.Int("writers", 32, "concurrent writers")
	dir := flag.String("dir", "", "data dir (default: a temp dir, removed)")
	flag.Parse()
	if err := run(*kills, *ttl, *writes, *writers, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench/store:", err)
		os.Exit(1)
	}
}

func freeURL(host string) (string, error) {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}

func run(kills int, ttl time.Duration, writes, writers int, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-store-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var b strings.Builder
	b.WriteString("sites:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "  s%d: {role: datacenter}\n", i)
	}
	b.WriteString("nodes:\n")
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("127.0.10.%d", i)
		p, err := freeURL(host)
		if err != nil {
			return err
		}
		c, err := freeURL(host)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  - {name: n%d, site: s%d, peer: %q, client: %q}\n", i, i, p, c)
	}
	src := b.String()
	top, err := topology.Parse("bench.yaml", []byte(src))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfgs := make([]node.Config, 3)
	for i := range cfgs {
		name := fmt.Sprintf("n%d", i+1)
		m, _, err := node.StoreFor(top, top.Node(name), name, node.StoreOptions{DataDir: filepath.Join(dir, name)})
		if err != nil {
			return err
		}
		cfgs[i] = node.Config{Name: name, Topology: top, TopologySource: []byte(src), Member: m, LeaseTTL: ttl, Logger: log}
	}
	nodes := make([]*node.Node, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range cfgs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nodes[i], errs[i] = node.Start(context.Background(), cfgs[i])
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.Close()
			}
		}
	}()
	fmt.Printf("cluster: 3 embedded members, raft tick 100ms / election 1000ms, lease TTL %s\n", ttl)
	if _, err := waitLeader(nodes, 60*time.Second); err != nil {
		return err
	}
	time.Sleep(ttl + 2*time.Second) // steady state, as after every restart below

	// Failover.
	var elected, agreed []time.Duration
	for k := 0; k < kills; k++ {
		l, err := waitLeader(nodes, 60*time.Second)
		if err != nil {
			return fmt.Errorf("round %d: %w", k, err)
		}
		// Let the lease be refreshed at a random phase, as in real life: the
		// kill lands anywhere within a keepalive period.
		time.Sleep(time.Duration(k%7) * ttl / 21)
		var rest []*node.Node
		li := 0
		for i, n := range nodes {
			if n == l {
				li = i
			} else {
				rest = append(rest, n)
			}
		}
		raftLeader := l.Member().IsRaftLeader()
		t0 := time.Now()
		l.Abort()
		var e time.Duration
		for {
			if leaderOf(rest) != nil {
				e = time.Since(t0)
				break
			}
			if time.Since(t0) > 60*time.Second {
				return fmt.Errorf("round %d: no new leader after 60s", k)
			}
			time.Sleep(time.Millisecond)
		}
		nl, err := waitLeader(rest, 30*time.Second)
		if err != nil {
			return fmt.Errorf("round %d: %w", k, err)
		}
		a := time.Since(t0)
		elected, agreed = append(elected, e), append(agreed, a)
		also := ""
		if raftLeader {
			also = " (it was also raft leader)"
		}
		fmt.Printf("kill %2d: %s killed%s, %s leads after %v (all survivors agree after %v)\n", k+1, l.Name(), also, nl.Name(), e.Round(time.Millisecond), a.Round(time.Millisecond))
		nodes[li], err = node.Start(context.Background(), cfgs[li])
		if err != nil {
			return fmt.Errorf("restart %s: %w", cfgs[li].Name, err)
		}
		if err := waitFresh(nodes[li], 60*time.Second); err != nil {
			return err
		}
		// Steady state before the next kill: a raft leader change (the
		// restart, or raft leadership being moved off the new leader)
		// extends every lease by an election timeout, which a site lost in
		// steady state does not see.
		time.Sleep(ttl + 2*time.Second)
	}
	if kills > 0 {
		fmt.Printf("failover (kill -> new leader), %d kills, TTL %s: p50 %v p99 %v max %v; within TTL: %d/%d\n",
			kills, ttl, pct(elected, 50), pct(elected, 99), pct(elected, 100), within(elected, ttl), kills)
		fmt.Printf("failover (kill -> all survivors agree): p50 %v p99 %v max %v\n", pct(agreed, 50), pct(agreed, 99), pct(agreed, 100))
	}

	// Write rate of observation transitions under a lease.
	if writes > 0 {
		w := nodes[0]
		if _, err := waitLeader(nodes, 60*time.Second); err != nil {
			return err
		}
		time.Sleep(ttl + 2*time.Second)
		var lease clientv3.LeaseID
		for lease = w.Lease(); lease == 0; lease = w.Lease() {
			time.Sleep(10 * time.Millisecond)
		}
		lat := make([]time.Duration, writes)
		var next atomic.Int64
		var failed atomic.Int64
		t0 := time.Now()
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(writes) {
						return
					}
					key := store.ObservationKey(w.Name(), fmt.Sprintf("svc%d/s%d/10.%d.%d.%d:443", i%1000, i%3, i%250, (i/250)%250, i%7))
					val := fmt.Sprintf(`{"up":%v,"since":%q,"reason":"connect: connection refused"}`, i%2 == 0, time.Now().UTC().Format(time.RFC3339Nano))
					s := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := w.Client().Put(ctx, key, val, clientv3.WithLease(lease))
					cancel()
					lat[i] = time.Since(s)
					if err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		fmt.Printf("writes: %d observation transitions under one lease, %d writers, through %s's member: %.0f puts/s, latency p50 %v p99 %v, %d failed\n",
			writes, writers, w.Name(), float64(writes)/d.Seconds(), pct(lat, 50), pct(lat, 99), failed.Load())

		// The same transitions batched, 64 puts per transaction, as a prober
		// flushing a burst (a site loss flips many endpoints at once).
		const batch = 64
		batches := (writes + batch - 1) / batch
		blat := make([]time.Duration, batches)
		next.Store(0)
		failed.Store(0)
		t0 = time.Now()
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					b := next.Add(1) - 1
					if b >= int64(batches) {
						return
					}
					var ops []clientv3.Op
					for i := b * batch; i < (b+1)*batch && i < int64(writes); i++ {
						key := store.ObservationKey(w.Name(), fmt.Sprintf("svc%d/s%d/10.%d.%d.%d:443", i%1000, i%3, i%250, (i/250)%250, i%7))
						val := fmt.Sprintf(`{"up":%v,"since":%q,"reason":"timeout"}`, i%2 == 1, time.Now().UTC().Format(time.RFC3339Nano))
						ops = append(ops, clientv3.OpPut(key, val, clientv3.WithLease(lease)))
					}
					s := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := w.Client().Txn(ctx).Then(ops...).Commit()
					cancel()
					blat[b] = time.Since(s)
					if err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		d = time.Since(t0)
		fmt.Printf("writes batched: same %d transitions in transactions of %d puts, %d writers: %.0f puts/s, txn latency p50 %v p99 %v, %d failed txns\n",
			writes, batch, writers, float64(writes)/d.Seconds(), pct(blat, 50), pct(blat, 99), failed.Load())
	}
	return nil
}

func leaderOf(ns []*node.Node) *node.Node {
	for _, n := range ns {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// waitLeader waits until one node leads and every node names it.
func waitLeader(ns []*node.Node, d time.Duration) (*node.Node, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := leaderOf(ns); l != nil {
			ok := true
			for _, n := range ns {
				if n.Leader() != l.Name() {
					ok = false
				}
			}
			if ok {
				return l, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return nil, fmt.Errorf("no agreed leader within %s", d)
}

func waitFresh(n *node.Node, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s, _ := n.Stale(); !s && n.Lease() != 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s did not rejoin within %s", n.Name(), d)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	if i > len(s) {
		i = len(s)
	}
	return s[i-1].Round(time.Millisecond)
}

func within(ds []time.Duration, limit time.Duration) int {
	n := 0
	for _, d := range ds {
		if d <= limit {
			n++
		}
	}
	return n
}
