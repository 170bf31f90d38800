package runbook

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// EtcdJournal is a Journal in etcd, under store.RunsPrefix:
//
//	runs/<id>/spec            manifest of the run's spec (JSON)
//	runs/<id>/spec/<n>        the spec (JSON, gzipped), in chunks of 1 MiB
//	runs/<id>/owner           the runner holding the claim
//	runs/<id>/state           State (JSON)
//	runs/<id>/control         run, pause or abort
//	runs/<id>/log/<seq>       one batch of records, seq zero-padded to 20 digits
//
// Each batch is one Put in a transaction guarded by the owner key, so a
// fenced-out runner cannot write, and the store sees one write per batch,
// not per record.
type EtcdJournal struct {
	c *clientv3.Client
}

// NewEtcdJournal returns a journal using c; the caller keeps ownership of c.
func NewEtcdJournal(c *clientv3.Client) *EtcdJournal { return &EtcdJournal{c: c} }

func runKey(id, part string) string { return store.RunsPrefix + id + "/" + part }

func logKey(id string, seq uint64) string {
	return fmt.Sprintf("%slog/%020d", store.RunsPrefix+id+"/", seq)
}

// specChunk is the largest piece of a spec stored under one key: etcd
// refuses requests over 1.5 MiB by default, and an inventory of tens of
// thousands of servers is larger than that.
const specChunk = 1 << 20

// Create implements Journal. The spec is gzipped and stored in chunks
// (runs/<id>/spec/<n>), then the manifest runs/<id>/spec, which makes the
// run exist, is written if no run of that id exists.
func (j *EtcdJournal) Create(ctx context.Context, id string, spec []byte) error {
	k := runKey(id, "spec")
	if resp, err := j.c.Get(ctx, k, clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("create run %s: %w", id, err)
	} else if resp.Count > 0 {
		return fmt.Errorf("create run %s: %w", id, ErrRunExists)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(spec)
	if err := zw.Close(); err != nil {
		return err
	}
	data := zb.Bytes()
	n := 0
	for off := 0; off < len(data) || n == 0; off += specChunk {
		end := min(off+specChunk, len(data))
		if _, err := j.c.Put(ctx, fmt.Sprintf("%s/%06d", k, n), string(data[off:end])); err != nil {
			return fmt.Errorf("create run %s: %w", id, err)
		}
		n++
	}
	manifest := fmt.Sprintf(`{"chunks":%d,"bytes":%d,"encoding":"gzip"}`, n, len(data))
	resp, err := j.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, manifest), clientv3.OpPut(runKey(id, "control"), ControlRun)).Commit()
	if err != nil {
		return fmt.Errorf("create run %s: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("create run %s: %w", id, ErrRunExists)
	}
	return nil
}

// Spec implements Journal.
func (j *EtcdJournal) Spec(ctx context.Context, id string) ([]byte, error) {
	k := runKey(id, "spec")
	resp, err := j.c.Get(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("run %s: %w", id, ErrNoRun)
	}
	var m struct {
		Chunks int `json:"chunks"`
		Bytes  int `json:"bytes"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil || m.Chunks <= 0 {
		return nil, fmt.Errorf("run %s: bad spec manifest", id)
	}
	data := make([]byte, 0, m.Bytes)
	for i := 0; i < m.Chunks; i++ {
		r, err := j.c.Get(ctx, fmt.Sprintf("%s/%06d", k, i))
		if err != nil {
			return nil, fmt.Errorf("read run %s: %w", id, err)
		}
		if len(r.Kvs) == 0 {
			return nil, fmt.Errorf("run %s: spec chunk %d missing", id, i)
		}
		data = append(data, r.Kvs[0].Value...)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("run %s: spec: %w", id, err)
	}
	spec, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("run %s: spec: %w", id, err)
	}
	return spec, nil
}

// Claim implements Journal.
func (j *EtcdJournal) Claim(ctx context.Context, id, owner string) (uint64, error) {
	if _, err := j.Spec(ctx, id); err != nil {
		return 0, err
	}
	if _, err := j.c.Put(ctx, runKey(id, "owner"), owner); err != nil {
		return 0, fmt.Errorf("claim run %s: %w", id, err)
	}
	resp, err := j.c.Get(ctx, runKey(id, "log/"), clientv3.WithLastKey()...)
	if err != nil {
		return 0, fmt.Errorf("claim run %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	seq, err := parseSeq(string(resp.Kvs[0].Key))
	if err != nil {
		return 0, err
	}
	return seq + 1, nil
}

func parseSeq(key string) (uint64, error) {
	i := strings.LastIndexByte(key, '/')
	var seq uint64
	if _, err := fmt.Sscanf(key[i+1:], "%d", &seq); err != nil {
		return 0, fmt.Errorf("bad log key %q", key)
	}
	return seq, nil
}

// Append implements Journal.
func (j *EtcdJournal) Append(ctx context.Context, id, owner string, seq uint64, batch []byte) error {
	k := logKey(id, seq)
	resp, err := j.c.Txn(ctx).If(
		clientv3.Compare(clientv3.Value(runKey(id, "owner")), "=", owner),
		clientv3.Compare(clientv3.CreateRevision(k), "=", 0),
	).Then(clientv3.OpPut(k, string(batch))).Commit()
	if err != nil {
		return fmt.Errorf("append to run %s: %w", id, err)
	}
	if resp.Succeeded {
		return nil
	}
	// A retried write whose first attempt succeeded finds its own batch.
	got, err := j.c.Get(ctx, k)
	if err == nil && len(got.Kvs) == 1 && string(got.Kvs[0].Value) == string(batch) {
		return nil
	}
	return fmt.Errorf("append to run %s: %w", id, ErrFenced)
}

// Read implements Journal.
func (j *EtcdJournal) Read(ctx context.Context, id string, from uint64, fn func(uint64, []byte) error) (uint64, error) {
	end := clientv3.GetPrefixRangeEnd(runKey(id, "log/"))
	next := from
	for {
		resp, err := j.c.Get(ctx, logKey(id, next), clientv3.WithRange(end), clientv3.WithLimit(128))
		if err != nil {
			return next, fmt.Errorf("read run %s: %w", id, err)
		}
		for _, kv := range resp.Kvs {
			seq, err := parseSeq(string(kv.Key))
			if err != nil {
				return next, err
			}
			if err := fn(seq, kv.Value); err != nil {
				return next, err
			}
			next = seq + 1
		}
		if !resp.More {
			return next, nil
		}
	}
}

// SetState implements Journal.
func (j *EtcdJournal) SetState(ctx context.Context, id, owner string, st State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	resp, err := j.c.Txn(ctx).If(clientv3.Compare(clientv3.Value(runKey(id, "owner")), "=", owner)).
		Then(clientv3.OpPut(runKey(id, "state"), string(data))).Commit()
	if err != nil {
		return fmt.Errorf("set state of run %s: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("set state of run %s: %w", id, ErrFenced)
	}
	return nil
}

// State implements Journal.
func (j *EtcdJournal) State(ctx context.Context, id string) (State, error) {
	var st State
	resp, err := j.c.Get(ctx, runKey(id, "state"))
	if err != nil {
		return st, fmt.Errorf("read state of run %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return st, fmt.Errorf("read state of run %s: %w", id, err)
	}
	return st, nil
}

// SetControl implements Journal.
func (j *EtcdJournal) SetControl(ctx context.Context, id, cmd string) error {
	switch cmd {
	case ControlRun, ControlPause, ControlAbort:
	default:
		return fmt.Errorf("control %q: expected run, pause or abort", cmd)
	}
	if _, err := j.Spec(ctx, id); err != nil {
		return err
	}
	if _, err := j.c.Put(ctx, runKey(id, "control"), cmd); err != nil {
		return fmt.Errorf("control run %s: %w", id, err)
	}
	return nil
}

// WatchControl implements Journal.
func (j *EtcdJournal) WatchControl(ctx context.Context, id string) <-chan string {
	out := make(chan string, 4)
	go func() {
		defer close(out)
		k := runKey(id, "control")
		rev := int64(0)
		resp, err := j.c.Get(ctx, k)
		if err == nil {
			rev = resp.Header.Revision + 1
			if len(resp.Kvs) == 1 {
				select {
				case out <- string(resp.Kvs[0].Value):
				case <-ctx.Done():
					return
				}
			}
		}
		opts := []clientv3.OpOption{}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		for wr := range j.c.Watch(clientv3.WithRequireLeader(ctx), k, opts...) {
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				select {
				case out <- string(ev.Kv.Value):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// List implements Journal.
func (j *EtcdJournal) List(ctx context.Context) ([]string, error) {
	resp, err := j.c.Get(ctx, store.RunsPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	// Keys are listed with the logs; a store with many long runs would
	// want an index here.
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var ids []string
	for _, kv := range resp.Kvs {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(string(kv.Key), store.RunsPrefix), "/spec"); ok && !strings.Contains(id, "/") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

var _ Journal = (*EtcdJournal)(nil)
