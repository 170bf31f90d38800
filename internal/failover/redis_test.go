package failover_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
	"github.com/firebreak/firebreak/internal/failover/redisfo"
	"github.com/firebreak/firebreak/internal/topology"
)

func startRedis(t *testing.T) *harness.RedisPair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rp, err := harness.StartRedis(ctx, harness.RedisOptions{Replicas: 1})
	needBinaries(t, err)
	t.Cleanup(rp.Close)
	return rp
}

func redisSetup(t *testing.T, rp *harness.RedisPair, cli *clientv3.Client, rpo time.Duration, v *sites, who string) *failover.Manager {
	t.Helper()
	r := rp.Replicas[0]
	ds := &topology.Datastore{Name: "sessions", Engine: "redis", Primary: "pangyo",
		Address: rp.Primary.Host, Port: rp.Primary.Port, RPO: rpo,
		Replicas: []topology.Replica{{Site: "ansan", Mode: topology.ModeAsync, Address: r.Host, Port: r.Port}}}
	f := &stonith{alive: func(m failover.Member) bool {
		return m.Port == rp.Primary.Port && m.Address == rp.Primary.Host && rp.Primary.Running()
	}}
	m, err := failover.New(failover.Config{
		Datastore: ds, Engine: redisfo.New(redisfo.Options{}), Client: cli,
		SiteDown: v.verdict, Fencer: f, Who: who, Interval: 100 * time.Millisecond, ProbeTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRedisSiteLoss: the same story as PostgreSQL: promote the replica,
// keep every replicated write, let the epoch refuse the second leader, and
// fence the old primary (REPLICAOF the new one) when it comes back.
func TestRedisSiteLoss(t *testing.T) {
	rp := startRedis(t)
	cli := startEtcd(t)
	var v sites
	m1 := redisSetup(t, rp, cli, time.Second, &v, "leader-1")
	m2 := redisSetup(t, rp, cli, time.Second, &v, "leader-2")
	runManager(t, m1)
	runManager(t, m2)
	ctx := context.Background()
	eventually(t, 20*time.Second, "readiness", func() bool { return m1.Readiness().Ready && m2.Readiness().Ready })

	pc := rp.Primary.Client()
	defer pc.Close()
	for i := 0; i < 500; i++ {
		if err := pc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// WAIT 1: the writes are on the replica (what "within RPO" means here).
	if n, err := pc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v", n, err)
	}
	eventually(t, 5*time.Second, "primary offset sampled", func() bool {
		info, _ := pc.Info(ctx, "replication").Result()
		off := redisfo.ParseInfo(info)["master_repl_offset"]
		_, p1, ok1 := m1.Tracker().Last()
		_, p2, ok2 := m2.Tracker().Last()
		return ok1 && ok2 && fmt.Sprint(p1) == off && fmt.Sprint(p2) == off
	})
	rp.Primary.Kill()
	v.set("pangyo", true)

	res := raceFailover(t, m1, m2, failover.Request{Reason: "pangyo lost"})
	r := rp.Replicas[0]
	if res.Epoch.Primary.Port != r.Port || res.FencedBy != "stonith" {
		t.Fatalf("promoted %s fenced by %q", res.Epoch.Primary, res.FencedBy)
	}
	rc := r.Client()
	defer rc.Close()
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 500 {
		t.Fatalf("new primary has %d of 500 keys (%v)", n, err)
	}
	if err := rc.Set(ctx, "after", 1, 0).Err(); err != nil {
		t.Fatalf("new primary refuses writes: %v", err)
	}

	// The old primary restarts from its AOF as a master; it is fenced on
	// sight and made a replica of the new primary.
	v.set("pangyo", false)
	if err := rp.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	oc := rp.Primary.Client()
	defer oc.Close()
	eventually(t, 10*time.Second, "old primary fenced", func() bool {
		err := oc.Set(ctx, "stale", 1, 0).Err()
		return err != nil && (strings.Contains(err.Error(), "READONLY") || strings.Contains(err.Error(), "NOREPLICAS"))
	})
	eventually(t, 20*time.Second, "old primary follows the new one", func() bool {
		info, err := oc.Info(ctx, "replication").Result()
		kv := redisfo.ParseInfo(info)
		return err == nil && kv["role"] == "slave" && kv["master_port"] == fmt.Sprint(r.Port) && kv["master_link_status"] == "up"
	})
	if n, _ := rc.Exists(ctx, "stale").Result(); n != 0 {
		t.Fatal("a write to the fenced old primary reached the new one")
	}
}

// TestRedisLagBeyondRPO: a replica that stalled is not promoted without
// the override; with it the loss is recorded.
func TestRedisLagBeyondRPO(t *testing.T) {
	rp := startRedis(t)
	cli := startEtcd(t)
	var v sites
	m := redisSetup(t, rp, cli, 500*time.Millisecond, &v, "leader-1")
	runManager(t, m)
	ctx := context.Background()
	eventually(t, 20*time.Second, "readiness", func() bool { return m.Readiness().Ready })

	// Cut the replica off: it follows an address where nothing listens
	// and keeps its replication offset.
	r := rp.Replicas[0]
	rc := r.Client()
	defer rc.Close()
	if err := rc.Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	pc := rp.Primary.Client()
	defer pc.Close()
	if err := pc.Set(ctx, "late", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "lag beyond RPO", func() bool {
		_, pos, ok := m.Tracker().Last()
		if !ok {
			return false
		}
		b, lag, _ := m.Tracker().Lag(pos - 1)
		return b > 0 && lag > 500*time.Millisecond
	})
	rp.Primary.Kill()
	v.set("pangyo", true)
	_, err := m.Failover(ctx, failover.Request{Reason: "pangyo lost"})
	if !errors.Is(err, failover.ErrRPO) {
		t.Fatalf("failover of a stalled replica: %v, want ErrRPO", err)
	}
	accept := &failover.Override{Who: "lee", Reason: "sessions can be re-created"}
	res, err := m.Failover(ctx, failover.Request{Who: "lee", AcceptLoss: accept})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Epoch.LossAccepted || res.Epoch.LagBytes == 0 || res.Epoch.Who != "lee" {
		t.Fatalf("epoch does not record the loss: %+v", res.Epoch)
	}
	if n, _ := rc.Exists(ctx, "late").Result(); n != 0 {
		t.Fatal("the late key reached the replica: the test did not make it lag")
	}
}

// TestRedisSwitchover: a planned switchover under a writer that follows
// the routing entry loses no acknowledged write, and the old primary ends
// up a replica of the new one.
func TestRedisSwitchover(t *testing.T) {
	rp := startRedis(t)
	cli := startEtcd(t)
	var v sites
	m := redisSetup(t, rp, cli, time.Second, &v, "leader-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var acked []string
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		addr := rp.Primary.Addr()
		for id := 1; ctx.Err() == nil; id++ {
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
			k := fmt.Sprintf("w%d", id)
			err := c.Set(ctx, k, id, 0).Err()
			c.Close()
			if err == nil {
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
				continue
			}
			if r, err := failover.ReadRoute(ctx, cli, "sessions"); err == nil && r != nil {
				addr = fmt.Sprintf("%s:%d", r.Targets[0].Address, r.Targets[0].Port)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	eventually(t, 20*time.Second, "writes before", func() bool { return count() >= 200 })
	res, err := m.Switchover(ctx, failover.Request{Who: "kim", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	before := count()
	eventually(t, 20*time.Second, "writes after", func() bool { return count() >= before+200 })
	cancel()
	wg.Wait()
	r := rp.Replicas[0]
	if res.Epoch.Primary.Port != r.Port || !res.Epoch.Planned {
		t.Fatalf("epoch = %+v", res.Epoch)
	}
	rc := r.Client()
	defer rc.Close()
	mu.Lock()
	keys := append([]string(nil), acked...)
	mu.Unlock()
	missing := 0
	for i := 0; i < len(keys); i += 500 {
		n, err := rc.Exists(context.Background(), keys[i:min(i+500, len(keys))]...).Result()
		if err != nil {
			t.Fatal(err)
		}
		missing += min(i+500, len(keys)) - i - int(n)
	}
	if missing != 0 {
		t.Fatalf("switchover lost %d of %d acknowledged writes", missing, len(keys))
	}
	oc := rp.Primary.Client()
	defer oc.Close()
	eventually(t, 20*time.Second, "old primary follows the new one", func() bool {
		info, err := oc.Info(context.Background(), "replication").Result()
		kv := redisfo.ParseInfo(info)
		return err == nil && kv["role"] == "slave" && kv["master_port"] == fmt.Sprint(r.Port)
	})
	t.Logf("switchover took %s; %d writes acknowledged, all present", res.Total, len(keys))
}
