package decide_test

import (
	"context"
	"encoding/json"
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
