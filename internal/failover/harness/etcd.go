package harness

import (
	"context"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/store"
)

// Etcd is a single embedded store member with a client.
type Etcd struct {
	Member *store.Member
	Client *clientv3.Client
	dir    string
}

// StartEtcd starts a store member (store.StartLoopback) on 127.0.0.1 free
// ports, in a temporary directory, and connects a client to it.
func StartEtcd() (_ *Etcd, err error) {
	dir, err := os.MkdirTemp("", "firebreak-etcd-")
	if err != nil {
		return nil, err
	}
	e := &Etcd{dir: dir}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	m, err := store.StartLoopback(context.Background(), store.MemberConfig{Name: "harness", Dir: dir, TickMs: 50, ElectionMs: 500}, "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	e.Member = m
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	e.Client = cli
	return e, nil
}

// Close stops the client and the member and removes the directory. It is
// idempotent.
func (e *Etcd) Close() {
	if e.Client != nil {
		_ = e.Client.Close()
		e.Client = nil
	}
	if e.Member != nil {
		e.Member.Close()
		e.Member = nil
	}
	_ = os.RemoveAll(e.dir)
}
