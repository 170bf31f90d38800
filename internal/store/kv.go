package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotFound is returned by Get when the key does not exist.
var ErrNotFound = errors.New("key not found")

// Get reads key and decodes its JSON value into a T. It returns the value
// and the key's ModRevision (for CompareAndSwap), or ErrNotFound.
func Get[T any](ctx context.Context, kv clientv3.KV, key string) (T, int64, error) {
	var v T
	resp, err := kv.Get(ctx, key)
	if err != nil {
		return v, 0, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return v, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		return v, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, resp.Kvs[0].ModRevision, nil
}

// Put encodes v as JSON and writes it at key; opts may attach a lease
// (clientv3.WithLease). It returns the store revision of the write.
func Put(ctx context.Context, kv clientv3.KV, key string, v any, opts ...clientv3.OpOption) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", key, err)
	}
	resp, err := kv.Put(ctx, key, string(b), opts...)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// List reads every key under prefix and decodes the values. The map is keyed
// by the key with prefix removed. Values that do not decode are skipped and
// reported in the joined error, which is returned with the good values.
// rev is the store revision of the read, to watch from rev+1.
func List[T any](ctx context.Context, kv clientv3.KV, prefix string) (m map[string]T, rev int64, err error) {
	resp, err := kv.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	m = make(map[string]T, len(resp.Kvs))
	var errs []error
	for _, kv := range resp.Kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			errs = append(errs, fmt.Errorf("decode %s: %w", kv.Key, err))
			continue
		}
		m[strings.TrimPrefix(string(kv.Key), prefix)] = v
	}
	return m, resp.Header.Revision, errors.Join(errs...)
}

// CompareAndSwap writes v at key only if the key's ModRevision still equals
// modRev (0: only if the key does not exist). ok is false when another
// writer got there first; guard adds extra comparisons (for example the
// leader's election key, see node.Node.LeaderGuard) that must also hold.
func CompareAndSwap(ctx context.Context, kv clientv3.KV, key string, modRev int64, v any, guard []clientv3.Cmp, opts ...clientv3.OpOption) (ok bool, rev int64, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, 0, fmt.Errorf("encode %s: %w", key, err)
	}
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}, guard...)
	resp, err := kv.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, string(b), opts...)).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("compare-and-swap %s: %w", key, err)
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

// Event is one change seen by Sync.
type Event[T any] struct {
	// Key is the key with the prefix removed.
	Key     string
	Value   T
	Deleted bool
	// Err is set when the value did not decode; Value is then zero.
	Err error
}

// Sync keeps a decoded copy of everything under prefix. It lists the
// prefix, calls fn with the full snapshot (events nil), then watches from
// the next revision and calls fn after every batch of changes with the
// updated snapshot and the events. fn owns nothing: the map is a fresh copy
// each call, safe to keep. fn runs on Sync's goroutine and should not block
// for long. When the watch is compacted or broken, Sync lists again and
// calls fn with a full snapshot. Sync returns ctx.Err() when ctx ends, or the
// first error fn returns.
func Sync[T any](ctx context.Context, cli *clientv3.Client, prefix string, fn func(snap map[string]T, rev int64, events []Event[T]) error) error {
	for {
		snap, rev, err := List[T](ctx, cli, prefix)
		if err != nil && snap == nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The store is unreachable (no quorum): retry; callers keep
			// serving their last snapshot meanwhile.
			if err := sleepCtx(ctx, retryDelay); err != nil {
				return err
			}
			continue
		}
		if err := fn(copyMap(snap), rev, nil); err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		err = func() error {
			for resp := range wch {
				if resp.Canceled || resp.Err() != nil {
					return nil // compacted, cancelled or no leader: list again
				}
				if len(resp.Events) == 0 {
					continue
				}
				evs := make([]Event[T], 0, len(resp.Events))
				for _, e := range resp.Events {
					k := strings.TrimPrefix(string(e.Kv.Key), prefix)
					ev := Event[T]{Key: k}
					if e.Type == clientv3.EventTypeDelete {
						ev.Deleted = true
						delete(snap, k)
					} else if err := json.Unmarshal(e.Kv.Value, &ev.Value); err != nil {
						ev.Err = fmt.Errorf("decode %s: %w", e.Kv.Key, err)
						delete(snap, k)
					} else {
						snap[k] = ev.Value
					}
					evs = append(evs, ev)
				}
				if err := fn(copyMap(snap), resp.Header.Revision, evs); err != nil {
					return err
				}
			}
			return nil
		}()
		cancel()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := sleepCtx(ctx, retryDelay); err != nil {
			return err
		}
	}
}

func copyMap[T any](m map[string]T) map[string]T {
	out := make(map[string]T, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
