// Package storetest starts real embedded etcd members for other packages'
// tests, so that every test runs against the same store code that nodes use
// (store.StartMember) instead of a copy of the embed set-up.
package storetest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/firebreak/firebreak/internal/store"
)

// FreePort returns a TCP port free on host at the time of the call.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a single-member store on host (a loopback address from the
// calling package's own block), waits until it serves, and returns a client
// of it. stop closes the member early (the client stays open, as a node's
// would when its store dies); it is idempotent. Cleanup closes both.
func Start(t testing.TB, host string) (cli *clientv3.Client, m *store.Member, stop func()) {
	t.Helper()
	m, err := store.StartLoopback(context.Background(), store.MemberConfig{
		Name: "test", Dir: t.TempDir(), TickMs: 50, ElectionMs: 500,
	}, host)
	if err != nil {
		t.Fatalf("start store member: %v", err)
	}
	cli, err = clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		m.Close()
		t.Fatalf("store client: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(m.Close) }
	t.Cleanup(func() {
		cli.Close()
		stop()
	})
	return cli, m, stop
}
