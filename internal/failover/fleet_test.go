package failover

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/topology"
)

// stubEngine is an Engine that reaches nothing.
type stubEngine struct{}

func (stubEngine) Name() string { return "postgres" }
func (stubEngine) Probe(context.Context, Member) (State, error) {
	return State{}, context.DeadlineExceeded
}
func (stubEngine) StopWrites(context.Context, Member) error     { return nil }
func (stubEngine) ResumeWrites(context.Context, Member) error   { return nil }
func (stubEngine) Fence(context.Context, Member, Member) error  { return nil }
func (stubEngine) Promote(context.Context, Member) error        { return nil }
func (stubEngine) Resync(context.Context, Member, Member) error { return nil }

func TestNewFleet(t *testing.T) {
	topo := &topology.Topology{Datastores: []*topology.Datastore{
		{Name: "accounts", Engine: "postgres", Primary: "a", Address: "10.0.0.1", Port: 5432,
			Replicas: []topology.Replica{{Site: "b", Mode: "sync", Address: "10.0.1.1", Port: 5432}}},
		{Name: "orders", Engine: "mysql", Primary: "a", Address: "10.0.0.2", Port: 3306},
		{Name: "ledger", Engine: "postgres", Primary: "a"},
		{Name: "cache", Engine: "postgres", Primary: "a", Address: "10.0.0.3", Port: 5432,
			Replicas: []topology.Replica{{Site: "b", Mode: "async"}}},
	}}
	topo.Index()
	// A client that is never used to dial (New does not connect).
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f, err := NewFleet(topo, Config{Client: cli}, map[string]Engine{"postgres": stubEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Manager("accounts") == nil || f.Manager("orders") != nil || f.Manager("ledger") != nil || f.Manager("cache") != nil {
		t.Fatalf("managers: %v skipped: %v", f.managers, f.Skipped())
	}
	if len(f.Skipped()) != 3 {
		t.Fatalf("skipped = %v", f.Skipped())
	}
	rs := f.Readiness()
	if len(rs) != 1 || rs[0].Datastore != "accounts" || rs[0].Ready {
		t.Fatalf("readiness before any round = %+v", rs)
	}
}
