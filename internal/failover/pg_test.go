package failover_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
	"github.com/firebreak/firebreak/internal/failover/pg"
	"github.com/firebreak/firebreak/internal/topology"
)

func startPG(t *testing.T, replicas ...harness.PGReplicaSpec) *harness.PGCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := harness.StartPG(ctx, harness.PGOptions{Replicas: replicas})
	needBinaries(t, err)
	t.Cleanup(c.Close)
	if err := c.Primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return c
}

func pgDatastore(c *harness.PGCluster, rpo time.Duration, modes ...string) *topology.Datastore {
	ds := &topology.Datastore{Name: "accounts", Engine: "postgres", Primary: "pangyo",
		Address: c.Primary.Host, Port: c.Primary.Port, RPO: rpo}
	sitesFor := []string{"ansan", "chuncheon"}
	for i, r := range c.Replicas {
		ds.Replicas = append(ds.Replicas, topology.Replica{Site: sitesFor[i], Mode: modes[i], Address: r.Host, Port: r.Port})
	}
	return ds
}

func newPGManager(t *testing.T, cli *clientv3.Client, ds *topology.Datastore, v *sites, f failover.Fencer, who string) *failover.Manager {
	t.Helper()
	m, err := failover.New(failover.Config{
		Datastore: ds, Engine: pg.New(pg.Options{SSLMode: "disable"}), Client: cli,
		SiteDown: v.verdict, Fencer: f, Who: who, Interval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pgMember(s *harness.PGServer) failover.Member {
	return failover.Member{Address: s.Host, Port: s.Port}
}

func pgStonith(c *harness.PGCluster) *stonith {
	return &stonith{alive: func(m failover.Member) bool {
		for _, s := range append([]*harness.PGServer{c.Primary}, c.Replicas...) {
			if s.Host == m.Address && s.Port == m.Port {
				return s.Running()
			}
		}
		return false
	}}
}

// insert writes id on s; nil means the commit was acknowledged.
func insert(ctx context.Context, conn *pgx.Conn, id int) error {
	_, err := conn.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", id)
	return err
}

func countIDs(t *testing.T, s *harness.PGServer, ids []int) int {
	t.Helper()
	n, err := s.QueryInt(context.Background(), "SELECT count(*) FROM t WHERE id = ANY($1)", ids)
	if err != nil {
		t.Fatalf("count on %s: %v", s.Name, err)
	}
	return int(n)
}

func isReadOnlyErr(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006"
}

// TestPostgresSiteLoss: the primary's site dies under a concurrent writer;
// the sync replica in another site is promoted; every acknowledged row is
// there; two leaders racing are told apart by the epoch; the old primary,
// restarted, is fenced on sight, and after a pg_rewind resync it comes back
// as a replica.
func TestPostgresSiteLoss(t *testing.T) {
	c := startPG(t, harness.PGReplicaSpec{Name: "ansan", Sync: true})
	cli := startEtcd(t)
	ds := pgDatastore(c, 0, topology.ModeSync)
	var v sites
	fence := pgStonith(c)
	m1 := newPGManager(t, cli, ds, &v, fence, "leader-1")
	m2 := newPGManager(t, cli, ds, &v, fence, "leader-2")
	// Only m1 monitors; m2 (a leader elected after the loss) knows the
	// last observed primary position from the store.
	runManager(t, m1)
	eventually(t, 20*time.Second, "readiness", func() bool { return m1.Readiness().Ready })

	// A writer acknowledges rows until the site dies.
	ctx := context.Background()
	conn, err := c.Primary.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var acked []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 1; ; id++ {
			if err := insert(ctx, conn, id); err != nil {
				return
			}
			acked = append(acked, id)
		}
	}()
	eventually(t, 20*time.Second, "rows written", func() bool {
		n, _ := c.Primary.QueryInt(ctx, "SELECT count(*) FROM t")
		return n >= 200
	})
	c.Primary.Kill()
	v.set("pangyo", true)
	wg.Wait()
	if len(acked) < 200 {
		t.Fatalf("only %d rows acknowledged", len(acked))
	}

	res := raceFailover(t, m1, m2, failover.Request{Reason: "pangyo lost"})
	if !res.Epoch.Primary.Same(pgMember(c.Replicas[0])) || res.FencedBy != "stonith" {
		t.Fatalf("promoted %s fenced by %q", res.Epoch.Primary, res.FencedBy)
	}
	if got := countIDs(t, c.Replicas[0], acked); got != len(acked) {
		t.Fatalf("new primary has %d of %d acknowledged rows", got, len(acked))
	}
	if err := c.Replicas[0].Exec(ctx, "INSERT INTO t (id) VALUES (-1)"); err != nil {
		t.Fatalf("new primary refuses writes: %v", err)
	}
	r, err := failover.ReadRoute(ctx, cli, "accounts")
	if err != nil || r == nil || len(r.Targets) != 1 || r.Targets[0].Port != c.Replicas[0].Port {
		t.Fatalf("route = %+v, %v", r, err)
	}
	ep, _, err := failover.ReadEpoch(ctx, cli, "accounts")
	if err != nil || ep.Epoch != 1 || ep.State != failover.EpochPromoted {
		t.Fatalf("epoch = %+v, %v", ep, err)
	}

	// A third attempt now finds the new primary's site up.
	if _, err := m2.Failover(ctx, failover.Request{}); !errors.Is(err, failover.ErrSiteUp) {
		t.Fatalf("failover of a healthy new primary: %v", err)
	}

	// The old primary's site comes back: the server restarts as a primary.
	v.set("pangyo", false)
	if err := c.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "old primary fenced on sight", func() bool {
		err := c.Primary.Exec(ctx, "INSERT INTO t (id) VALUES (-2)")
		return isReadOnlyErr(err)
	})
	evs, err := failover.Events(ctx, cli, "accounts")
	if err != nil {
		t.Fatal(err)
	}
	var sawFence bool
	for _, e := range evs {
		sawFence = sawFence || (e.Kind == "fenced-on-sight" && e.From.Port == c.Primary.Port && e.Error == "")
	}
	if !sawFence {
		t.Fatalf("no fenced-on-sight event in %+v", evs)
	}
	// With a sync standby configured and none connected, the old primary
	// could not have acknowledged a write before the fence either.
	if n := countIDs(t, c.Replicas[0], []int{-2}); n != 0 {
		t.Fatal("a write to the old primary reached the new one")
	}

	// Resync (pg_rewind) re-admits it as a replica of the new primary.
	eng := pg.New(pg.Options{SSLMode: "disable", Resync: func(ctx context.Context, old, np failover.Member) error {
		return c.Primary.Rewind(ctx, c.Replicas[0])
	}})
	if err := eng.Resync(ctx, pgMember(c.Primary), pgMember(c.Replicas[0])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "old primary streams from the new one", func() bool {
		st, err := eng.Probe(ctx, pgMember(c.Primary))
		return err == nil && st.Role == failover.RoleReplica && st.Streaming
	})
	want := append(acked, -1)
	deadline := time.Now().Add(10 * time.Second)
	for countIDs(t, c.Primary, want) != len(want) {
		if time.Now().After(deadline) {
			st, err := eng.Probe(ctx, pgMember(c.Primary))
			n1, _ := c.Primary.QueryInt(ctx, "SELECT count(*) FROM t")
			n2, _ := c.Replicas[0].QueryInt(ctx, "SELECT count(*) FROM t")
			t.Fatalf("resynced old primary has %d of %d rows (old %d rows, new %d rows; %+v %v)\n%s",
				countIDs(t, c.Primary, want), len(want), n1, n2, st, err, c.Primary.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPostgresLagBeyondRPO: an async replica that stopped receiving WAL is
// not promoted; with a human accepting the loss it is, and the loss is
// recorded with who and why.
func TestPostgresLagBeyondRPO(t *testing.T) {
	c := startPG(t, harness.PGReplicaSpec{Name: "ansan"})
	cli := startEtcd(t)
	ds := pgDatastore(c, time.Second, topology.ModeAsync)
	var v sites
	m := newPGManager(t, cli, ds, &v, pgStonith(c), "leader-1")
	runManager(t, m)
	ctx := context.Background()
	eventually(t, 20*time.Second, "readiness", func() bool { return m.Readiness().Ready })

	// Cut the replica off, then write on the primary.
	rep := c.Replicas[0]
	if err := rep.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = ''"); err != nil {
		t.Fatal(err)
	}
	if err := rep.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "replication stopped", func() bool {
		n, err := c.Primary.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication")
		return err == nil && n == 0
	})
	if err := c.Primary.Exec(ctx, "INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "lag beyond RPO seen by readiness", func() bool {
		r := m.Readiness()
		for _, ch := range r.Checks {
			if ch.Name == failover.CheckLagWithinRPO {
				return !ch.OK
			}
		}
		return false
	})
	c.Primary.Kill()
	v.set("pangyo", true)

	_, err := m.Failover(ctx, failover.Request{Reason: "pangyo lost"})
	if !errors.Is(err, failover.ErrRPO) {
		t.Fatalf("failover beyond RPO: %v, want ErrRPO", err)
	}
	if st, err := pg.New(pg.Options{SSLMode: "disable"}).Probe(ctx, pgMember(rep)); err != nil || st.Role != failover.RoleReplica {
		t.Fatalf("replica promoted without override: %+v %v", st, err)
	}
	accept := &failover.Override{Who: "kim", Reason: "RTO matters more than the last second of orders"}
	res, err := m.Failover(ctx, failover.Request{Who: "kim", Reason: "pangyo lost", AcceptLoss: accept})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Epoch.LossAccepted || res.Epoch.LagBytes == 0 || res.Epoch.LagTime <= time.Second {
		t.Fatalf("epoch does not record the loss: %+v", res.Epoch)
	}
	if n := countIDs(t, rep, []int{1}); n != 0 {
		t.Fatal("the row written after the cut is on the replica: the test did not make it lag")
	}
	evs, err := failover.Events(ctx, cli, "accounts")
	if err != nil {
		t.Fatal(err)
	}
	var refused, accepted bool
	for _, e := range evs {
		refused = refused || (e.Kind == "failover-refused" && e.Error != "")
		if e.Kind == "failover" {
			o := e.Overrides["acceptDataLoss"]
			accepted = e.LossAccepted && o.Who == "kim" && o.Reason == accept.Reason && e.LagBytes > 0
		}
	}
	if !refused || !accepted {
		t.Fatalf("audit log lacks the refusal or the accepted loss: %+v", evs)
	}
}

// TestPostgresSwitchover: a planned switchover under a concurrent writer
// that follows the routing entry loses no acknowledged row.
func TestPostgresSwitchover(t *testing.T) {
	c := startPG(t, harness.PGReplicaSpec{Name: "ansan"})
	cli := startEtcd(t)
	ds := pgDatastore(c, 0, topology.ModeAsync)
	var v sites
	m := newPGManager(t, cli, ds, &v, nil, "leader-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	w := &routedWriter{cli: cli, ds: ds}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(ctx)
	}()
	eventually(t, 20*time.Second, "writes before", func() bool { return w.count() >= 100 })
	res, err := m.Switchover(ctx, failover.Request{Who: "kim", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	before := w.count()
	eventually(t, 20*time.Second, "writes after", func() bool { return w.count() >= before+100 })
	cancel()
	wg.Wait()
	if !res.Epoch.Primary.Same(pgMember(c.Replicas[0])) || !res.Epoch.Planned {
		t.Fatalf("epoch = %+v", res.Epoch)
	}
	acked := w.ids()
	if got := countIDs(t, c.Replicas[0], acked); got != len(acked) {
		t.Fatalf("new primary has %d of %d acknowledged rows: switchover lost %d", got, len(acked), len(acked)-got)
	}
	if err := c.Primary.Exec(context.Background(), "INSERT INTO t (id) VALUES (-1)"); !isReadOnlyErr(err) {
		t.Fatalf("old primary after switchover: %v, want read-only", err)
	}
	t.Logf("switchover took %s; %d rows acknowledged, all present", res.Total, len(acked))
}

// routedWriter inserts increasing ids into the datastore's current primary,
// found through its routing entry (the topology's primary before any), and
// remembers the acknowledged ones.
type routedWriter struct {
	cli   *clientv3.Client
	ds    *topology.Datastore
	mu    sync.Mutex
	acked []int
}

func (w *routedWriter) run(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for id := 1; ctx.Err() == nil; {
		if conn == nil {
			host, port := w.ds.Address, w.ds.Port
			if r, err := failover.ReadRoute(ctx, w.cli, w.ds.Name); err == nil && r != nil && len(r.Targets) > 0 {
				host, port = r.Targets[0].Address, r.Targets[0].Port
			}
			cfg, err := pgx.ParseConfig("user=postgres dbname=postgres sslmode=disable connect_timeout=2")
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
		// Every attempt uses a new id: a commit whose answer was lost
		// must not block the next one with a duplicate key.
		err := insert(ctx, conn, id)
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			id++
			time.Sleep(5 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, id)
		w.mu.Unlock()
		id++
	}
}

func (w *routedWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *routedWriter) ids() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.acked...)
}
