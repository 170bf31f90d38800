package decide

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// RollupPrefix holds daily rollups of compacted history:
// store.HistoryPrefix+"rollup/<yyyy-mm-dd>" is a JSON Rollup.
const RollupPrefix = store.HistoryPrefix + "rollup/"

// Rollup is one UTC day of compacted history events.
type Rollup struct {
	Day    string         `json:"day"`
	Counts map[string]int `json:"counts"` // events per kind
	Events []Event        `json:"events"`
}

// rawEnd bounds the raw event keys (<ts>-<seq>, digits) below "rollup/".
const rawEnd = store.HistoryPrefix + ":"

// CompactHistory moves raw history events older than before into daily
// rollups, in guarded transactions (guard may be nil). Nothing is lost: a
// rollup and the deletion of its raw keys commit together. It returns how
// many events were compacted.
func CompactHistory(ctx context.Context, cli *clientv3.Client, before time.Time, guard func() ([]clientv3.Cmp, bool)) (int, error) {
	total := 0
	for {
		n, more, err := compactBatch(ctx, cli, before, guard)
		total += n
		if err != nil || !more || n == 0 {
			return total, err
		}
	}
}

func compactBatch(ctx context.Context, cli *clientv3.Client, before time.Time, guard func() ([]clientv3.Cmp, bool)) (int, bool, error) {
	end := fmt.Sprintf("%s%020d", store.HistoryPrefix, before.UnixNano())
	resp, err := cli.Get(ctx, store.HistoryPrefix+"0", clientv3.WithRange(end), clientv3.WithLimit(maxTxnOps-1))
	if err != nil {
		return 0, false, fmt.Errorf("read history: %w", err)
	}
	byDay := map[string][]*eventKV{}
	for _, kv := range resp.Kvs {
		var ev Event
		if json.Unmarshal(kv.Value, &ev) != nil {
			ev = Event{Kind: "unreadable", Reason: string(kv.Value)}
		}
		day := ev.Time.UTC().Format(time.DateOnly)
		byDay[day] = append(byDay[day], &eventKV{key: string(kv.Key), ev: ev})
	}
	n := 0
	for day, evs := range byDay {
		key := RollupPrefix + day
		cur, err := cli.Get(ctx, key)
		if err != nil {
			return n, false, fmt.Errorf("read rollup %s: %w", day, err)
		}
		ru := Rollup{Day: day, Counts: map[string]int{}}
		var modRev int64
		if len(cur.Kvs) > 0 {
			modRev = cur.Kvs[0].ModRevision
			if err := json.Unmarshal(cur.Kvs[0].Value, &ru); err != nil {
				return n, false, fmt.Errorf("rollup %s: %w", day, err)
			}
			if ru.Counts == nil {
				ru.Counts = map[string]int{}
			}
		}
		ops := make([]clientv3.Op, 0, len(evs)+1)
		for _, e := range evs {
			ru.Events = append(ru.Events, e.ev)
			ru.Counts[e.ev.Kind]++
			ops = append(ops, clientv3.OpDelete(e.key))
		}
		sort.SliceStable(ru.Events, func(i, j int) bool { return ru.Events[i].Time.Before(ru.Events[j].Time) })
		b, err := json.Marshal(ru)
		if err != nil {
			return n, false, err
		}
		ops = append(ops, clientv3.OpPut(key, string(b)))
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
		if guard != nil {
			g, ok := guard()
			if !ok {
				return n, false, ErrNotLeader
			}
			cmps = append(cmps, g...)
		}
		tr, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return n, false, fmt.Errorf("write rollup %s: %w", day, err)
		}
		if tr.Succeeded {
			n += len(evs)
		}
	}
	return n, resp.More, nil
}

type eventKV struct {
	key string
	ev  Event
}

// ReadHistory returns every history event at or after since, oldest first,
// from the rollups and the raw events.
func ReadHistory(ctx context.Context, cli *clientv3.Client, since time.Time) ([]Event, error) {
	var out []Event
	ru, err := cli.Get(ctx, RollupPrefix+since.UTC().Format(time.DateOnly), clientv3.WithRange(clientv3.GetPrefixRangeEnd(RollupPrefix)))
	if err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	for _, kv := range ru.Kvs {
		var r Rollup
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("rollup %s: %w", kv.Key, err)
		}
		for _, ev := range r.Events {
			if !ev.Time.Before(since) {
				out = append(out, ev)
			}
		}
	}
	raw, err := cli.Get(ctx, fmt.Sprintf("%s%020d", store.HistoryPrefix, since.UnixNano()), clientv3.WithRange(rawEnd))
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	for _, kv := range raw.Kvs {
		var ev Event
		if json.Unmarshal(kv.Value, &ev) == nil {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}
