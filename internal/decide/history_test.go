package decide_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/store"
)

func TestHistoryCompaction(t *testing.T) {
	e, cli, _, err := sitesim.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	day1 := time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC)
	var want []decide.Event
	// 250 events over two days (more than one transaction's worth), plus
	// 3 recent ones that must stay raw.
	for i := range 253 {
		at := day1.Add(time.Duration(i) * 30 * time.Second)
		if i >= 250 {
			at = time.Date(2026, 12, 1, 6, 0, i, 0, time.UTC)
		}
		ev := decide.Event{Time: at, Kind: decide.EventEndpoint, Subject: fmt.Sprintf("ep%d", i), From: "up", To: "down"}
		want = append(want, ev)
		b, _ := json.Marshal(ev)
		if _, err := cli.Put(ctx, fmt.Sprintf("%s%020d-%06d", store.HistoryPrefix, at.UnixNano(), i), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := decide.CompactHistory(ctx, cli, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), nil)
	if err != nil || n != 250 {
		t.Fatalf("CompactHistory = %d, %v; want 250 events", n, err)
	}
	rollups, err := cli.Get(ctx, decide.RollupPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || rollups.Count != 2 {
		t.Fatalf("rollup keys: %v %v, want 2 (two days)", rollups.Count, err)
	}
	got, err := decide.ReadHistory(ctx, cli, day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadHistory returned %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) || got[i].Subject != want[i].Subject {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Idempotent: a second compaction moves nothing.
	if n, err := decide.CompactHistory(ctx, cli, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), nil); err != nil || n != 0 {
		t.Fatalf("second CompactHistory = %d, %v", n, err)
	}
	// A guard that says "not leader" stops compaction.
	if _, err := decide.CompactHistory(ctx, cli, time.Now(), func() ([]clientv3.Cmp, bool) { return nil, false }); err == nil {
		t.Fatal("compaction without leadership succeeded")
	}
}

func TestOverrideStore(t *testing.T) {
	e, cli, _, err := sitesim.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	old := decide.Override{ID: decide.OverrideID(decide.KindDrain, "a"), Kind: decide.KindDrain, Target: "a", Who: "kim", Why: "w",
		Created: now.Add(-50 * time.Hour), Expires: now.Add(-48 * time.Hour)}
	cur := decide.Override{ID: decide.OverrideID(decide.KindForceDown, "web/b/10.0.0.1:80"), Kind: decide.KindForceDown,
		Target: "web/b/10.0.0.1:80", Who: "lee", Why: "bad deploy", Created: now, Expires: now.Add(time.Hour)}
	if cur.ID != "force-down-web_b_10.0.0.1_80" {
		t.Errorf("OverrideID = %q", cur.ID)
	}
	for _, o := range []decide.Override{old, cur} {
		if err := decide.PutOverride(ctx, cli, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := decide.PutOverride(ctx, cli, decide.Override{ID: "x", Kind: decide.KindDrain, Target: "a", Who: "kim"}); err == nil {
		t.Error("override without why or expiry was stored")
	}
	if n, err := decide.PruneOverrides(ctx, cli, now.Add(-24*time.Hour), nil); err != nil || n != 1 {
		t.Fatalf("PruneOverrides = %d, %v; want 1", n, err)
	}
	got, err := decide.ListOverrides(ctx, cli)
	if err != nil || len(got) != 1 || got[0].ID != cur.ID || got[0].Why != "bad deploy" {
		t.Fatalf("ListOverrides = %+v, %v", got, err)
	}
	if err := decide.DeleteOverride(ctx, cli, cur.ID, "lee", "rolled back", now); err != nil {
		t.Fatal(err)
	}
	if err := decide.DeleteOverride(ctx, cli, cur.ID, "lee", "again", now); !errors.Is(err, decide.ErrNoOverride) {
		t.Fatalf("second delete: %v", err)
	}
	audit, err := cli.Get(ctx, store.AuditPrefix, clientv3.WithPrefix())
	if err != nil || len(audit.Kvs) != 3 {
		t.Fatalf("audit records: %d, %v; want 3 (two puts, one delete)", len(audit.Kvs), err)
	}
	found := false
	for _, kv := range audit.Kvs {
		var rec decide.AuditRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Action == "override.delete" {
			found = rec.Who == "lee" && rec.Reason == "rolled back" && rec.Subject == cur.ID
		}
	}
	if !found {
		t.Fatal("no audit record of the delete with who and why")
	}
}
