package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/topology"
)

// ErrNoTopology is returned by LoadTopology when none was ever published.
var ErrNoTopology = errors.New("no topology published in the store")

// TopologySource names the pseudo-file of a stored topology revision, used
// in positioned errors.
func TopologySource(rev int64) string { return fmt.Sprintf("store:topology@%d", rev) }

// PublishTopology validates src (named file in errors) and, when valid and
// different from the current topology, stores it as a new revision and makes
// it current in one compare-and-swap transaction. It returns the revision
// now current and whether a new one was written. An invalid topology is
// refused with the parser's error (a yamlnode.ErrorList with file:line:col)
// and nothing is written.
func PublishTopology(ctx context.Context, cli *clientv3.Client, file string, src []byte) (rev int64, changed bool, err error) {
	if _, err := topology.Parse(file, src); err != nil {
		return 0, false, err
	}
	for attempt := 0; attempt < 10; attempt++ {
		resp, err := cli.Get(ctx, TopologyCurrent)
		if err != nil {
			return 0, false, fmt.Errorf("publish topology: %w", err)
		}
		var cur, modRev int64
		if len(resp.Kvs) > 0 {
			modRev = resp.Kvs[0].ModRevision
			if cur, err = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64); err != nil {
				return 0, false, fmt.Errorf("publish topology: %s holds %q: %w", TopologyCurrent, resp.Kvs[0].Value, err)
			}
			old, err := cli.Get(ctx, TopologyKey(cur))
			if err != nil {
				return 0, false, fmt.Errorf("publish topology: %w", err)
			}
			if len(old.Kvs) > 0 && bytes.Equal(old.Kvs[0].Value, src) {
				return cur, false, nil
			}
		}
		next := cur + 1
		tr, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(TopologyCurrent), "=", modRev)).
			Then(clientv3.OpPut(TopologyKey(next), string(src)),
				clientv3.OpPut(TopologyCurrent, strconv.FormatInt(next, 10))).
			Commit()
		if err != nil {
			return 0, false, fmt.Errorf("publish topology: %w", err)
		}
		if tr.Succeeded {
			return next, true, nil
		}
	}
	return 0, false, errors.New("publish topology: too many concurrent publishers, try again")
}

// LoadTopology reads and parses the current topology. It returns the
// topology, its revision and its YAML source, or ErrNoTopology.
func LoadTopology(ctx context.Context, kv clientv3.KV) (*topology.Topology, int64, []byte, error) {
	resp, err := kv.Get(ctx, TopologyCurrent)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("load topology: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil, ErrNoTopology
	}
	rev, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("load topology: %s holds %q: %w", TopologyCurrent, resp.Kvs[0].Value, err)
	}
	t, src, err := LoadTopologyRev(ctx, kv, rev)
	return t, rev, src, err
}

// LoadTopologyRev reads and parses topology revision rev.
func LoadTopologyRev(ctx context.Context, kv clientv3.KV, rev int64) (*topology.Topology, []byte, error) {
	resp, err := kv.Get(ctx, TopologyKey(rev))
	if err != nil {
		return nil, nil, fmt.Errorf("load topology %d: %w", rev, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, fmt.Errorf("load topology %d: %w", rev, ErrNotFound)
	}
	src := resp.Kvs[0].Value
	t, err := topology.Parse(TopologySource(rev), src)
	if err != nil {
		return nil, nil, fmt.Errorf("load topology %d: %w", rev, err)
	}
	return t, src, nil
}
