package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// ErrNoOverride is returned when an override to delete does not exist.
var ErrNoOverride = errors.New("no such override")

// AuditRecord is one entry of the append-only audit log
// (store.AuditPrefix+<ts>-<seq>) for a mutating action.
type AuditRecord struct {
	Time    time.Time `json:"time"`
	Who     string    `json:"who"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	// Detail is the object acted on (an Override for override actions).
	Detail any `json:"detail,omitempty"`
}

// OverrideID is the conventional ID of an override of kind on target:
// one override per kind and target, so repeating a drain refreshes it.
func OverrideID(kind, target string) string {
	if target == "" {
		return kind
	}
	return kind + "-" + strings.NewReplacer("/", "_", ":", "_").Replace(target)
}

// auditKey is <unix-ns>-<random>: time-ordered, and two records written in
// the same nanosecond (by different processes) do not collide.
func auditKey(t time.Time) string {
	return fmt.Sprintf("%s%020d-%08x", store.AuditPrefix, t.UnixNano(), rand.Uint32())
}

// PutOverride validates o and stores it with its audit record in one
// transaction.
func PutOverride(ctx context.Context, cli *clientv3.Client, o Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	a, err := json.Marshal(AuditRecord{Time: o.Created, Who: o.Who, Action: "override." + o.Kind, Subject: o.Target, Reason: o.Why, Detail: o})
	if err != nil {
		return err
	}
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut(store.OverridesPrefix+o.ID, string(b)),
		clientv3.OpPut(auditKey(o.Created), string(a)),
	).Commit()
	if err != nil {
		return fmt.Errorf("store override %s: %w", o.ID, err)
	}
	return nil
}

// DeleteOverride removes the override id, recording who and why in the
// audit log; ErrNoOverride when it does not exist.
func DeleteOverride(ctx context.Context, cli *clientv3.Client, id, who, why string, now time.Time) error {
	key := store.OverridesPrefix + id
	cur, err := cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read override %s: %w", id, err)
	}
	if len(cur.Kvs) == 0 {
		return fmt.Errorf("%w: %s", ErrNoOverride, id)
	}
	var o Override
	_ = json.Unmarshal(cur.Kvs[0].Value, &o)
	a, err := json.Marshal(AuditRecord{Time: now, Who: who, Action: "override.delete", Subject: id, Reason: why, Detail: o})
	if err != nil {
		return err
	}
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)).Then(
		clientv3.OpDelete(key),
		clientv3.OpPut(auditKey(now), string(a)),
	).Commit()
	if err != nil {
		return fmt.Errorf("delete override %s: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("delete override %s: changed concurrently, try again", id)
	}
	return nil
}

// ListOverrides returns every stored override (expired ones included,
// since they are kept for the record until deleted), sorted by ID.
func ListOverrides(ctx context.Context, cli *clientv3.Client) ([]Override, error) {
	resp, err := cli.Get(ctx, store.OverridesPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list overrides: %w", err)
	}
	var out []Override
	for _, kv := range resp.Kvs {
		var o Override
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return nil, fmt.Errorf("override %s: %w", kv.Key, err)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PruneOverrides deletes overrides that expired before `before` (they are
// kept a while after expiry so `override list --all` shows them; the audit
// log keeps them for good). guard may be nil. It returns how many it
// deleted.
func PruneOverrides(ctx context.Context, cli *clientv3.Client, before time.Time, guard func() ([]clientv3.Cmp, bool)) (int, error) {
	resp, err := cli.Get(ctx, store.OverridesPrefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list overrides: %w", err)
	}
	n := 0
	for _, kv := range resp.Kvs {
		var o Override
		if json.Unmarshal(kv.Value, &o) != nil || !o.Expires.Before(before) {
			continue
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)}
		if guard != nil {
			g, ok := guard()
			if !ok {
				return n, ErrNotLeader
			}
			cmps = append(cmps, g...)
		}
		tr, err := cli.Txn(ctx).If(cmps...).Then(clientv3.OpDelete(string(kv.Key))).Commit()
		if err != nil {
			return n, fmt.Errorf("delete expired override %s: %w", o.ID, err)
		}
		if tr.Succeeded {
			n++
		}
	}
	return n, nil
}
