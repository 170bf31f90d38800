package pg_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
	"github.com/firebreak/firebreak/internal/failover/pg"
)

// TestFenceSurvivesRestart: a reachable primary fenced with
// ShutdownOnFence stops, and when it is started again it still refuses
// writes; ResumeWrites lifts the fence.
func TestFenceSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := harness.StartPG(ctx, harness.PGOptions{HostBlock: [2]int{67, 67}})
	if err != nil {
		if errors.Is(err, harness.ErrNoBinaries) && os.Getenv("CI") != "true" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := c.Primary
	m := failover.Member{Site: "pangyo", Address: s.Host, Port: s.Port}
	eng := pg.New(pg.Options{SSLMode: "disable", ShutdownOnFence: true})

	st, err := eng.Probe(ctx, m)
	if err != nil || st.Role != failover.RolePrimary || !st.Writable || st.Position == 0 || st.Capacity != 40 {
		t.Fatalf("probe = %+v, %v", st, err)
	}
	if err := s.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Fence(ctx, m, failover.Member{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Running() {
		if time.Now().After(deadline) {
			t.Fatal("fenced server still running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := eng.Probe(ctx, m); err == nil {
		t.Fatal("fenced server still answers")
	}
	if err := eng.Fence(ctx, m, failover.Member{}); err == nil {
		t.Fatal("direct fence of a stopped server reported success")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err = s.Exec(ctx, "INSERT INTO t VALUES (1)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("write after restart: %v, want read-only (25006)", err)
	}
	if st, err := eng.Probe(ctx, m); err != nil || st.Writable {
		t.Fatalf("probe after restart = %+v, %v; want not writable", st, err)
	}
	if err := eng.ResumeWrites(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("write after ResumeWrites: %v", err)
	}
	if err := eng.Resync(ctx, m, m); !errors.Is(err, pg.ErrNoResyncHook) {
		t.Fatalf("resync without a hook: %v", err)
	}
}
