package api_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/topology"
)

func freeAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestComponentOnARealNode runs the API as a component of a real
// single-member node: it serves on the topology's api address, shows the
// node as alive and leading, accepts a drain from a token kept in the
// store, and stops with the node.
func TestComponentOnARealNode(t *testing.T) {
	apiAddr := freeAddr(t, "127.0.56.1")
	src := "sites:\n  a: {role: datacenter}\nnodes:\n  - {name: solo, site: a, api: \"" + apiAddr + "\"}\n"
	top, err := topology.Parse("solo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := node.StoreFor(top, nil, "solo", node.StoreOptions{DataDir: filepath.Join(t.TempDir(), "data"),
		ClientURL: "http://" + freeAddr(t, "127.0.56.2"), PeerURL: "http://" + freeAddr(t, "127.0.56.2"), TickMs: 50, ElectionMs: 500})
	if err != nil {
		t.Fatal(err)
	}
	comp := &api.Component{}
	n, err := node.Start(context.Background(), node.Config{Name: "solo", Topology: top, TopologySource: []byte(src), Member: m,
		LeaseTTL: 2 * time.Second, Logger: slog.New(slog.DiscardHandler), Components: []node.Component{comp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Abort() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for comp.State() == nil {
		if ctx.Err() != nil {
			t.Fatal("component never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := api.PutToken(ctx, n.Client(), "ops", auth.Admin, "ops-token-0123456789"); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(client.Config{Server: apiAddr, Token: "ops-token-0123456789"})
	for {
		snap, err := c.Snapshot(ctx)
		if err == nil && snap.Leader == "solo" && len(snap.Nodes) == 1 && snap.Nodes[0].Alive && snap.Topology.Revision >= 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node never shown alive and leading: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	o, err := c.Drain(ctx, "a", "test drain", time.Minute)
	if err != nil || o.Who != "ops" {
		t.Fatalf("drain: %+v %v", o, err)
	}
	recs, err := c.Audit(ctx, time.Time{}, 0)
	if err != nil || len(recs) != 1 || recs[0].Via != "solo" {
		t.Fatalf("audit: %+v %v", recs, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + apiAddr + "/healthz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("API still serving after the node closed: %v", err)
	}
}
