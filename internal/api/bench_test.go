package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
)

// BenchmarkRoutingChangeToSSE measures how long a routing change written
// to etcd takes to reach a load balancer following the API's event stream
// (etcd watch -> api.Etcd -> SSE -> client.Watch), one change at a time.
func BenchmarkRoutingChangeToSSE(b *testing.B) {
	e, cli, _, err := sitesim.StartEtcd(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := api.NewEtcd(cli, api.EtcdConfig{Node: "n1"}, nil)
	go st.Run(ctx)
	authn := &auth.Authenticator{Anonymous: auth.Viewer}
	srv, err := api.New(api.Config{Node: "n1", Auth: authn}, st, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.55.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.ServeListener(ctx, ln)
	c, _ := client.New(client.Config{Server: ln.Addr().String()})
	got := make(chan int64, 16)
	ready := make(chan struct{})
	go c.Watch(ctx, []string{"routing"}, func(ev client.Event) error {
		if ev.Name == "hello" {
			close(ready)
		}
		if r, err := ev.Route(); err == nil && ev.Name == "routing" {
			got <- r.Revision
		}
		return nil
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		b.Fatal("no stream")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rev := int64(i + 1)
		r := routing.Route{Service: "web", Revision: rev, Targets: []routing.Target{{ID: "web/a/10.0.0.1:80", Site: "a", Address: "10.0.0.1", Port: 80}}}
		v, _ := json.Marshal(r)
		start := time.Now()
		if _, err := cli.Put(ctx, store.RoutingKey("web"), string(v)); err != nil {
			b.Fatal(err)
		}
		for seen := int64(0); seen != rev; {
			select {
			case seen = <-got:
			case <-time.After(10 * time.Second):
				b.Fatal(errors.New("routing change " + strconv.FormatInt(rev, 10) + " never arrived"))
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
