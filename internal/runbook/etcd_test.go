package runbook

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// freePort returns a free TCP port on host (this package's loopback block).
func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster is a set of real embedded etcd members.
type cluster struct {
	members []*embed.Etcd
	once    []sync.Once
	clients []string // client URL per member
}

// startCluster starts n embedded etcd members on 127.0.40.1 in one cluster.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	const host = "127.0.40.1"
	cl := &cluster{}
	var cfgs []*embed.Config
	initial := ""
	for i := 0; i < n; i++ {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cu, _ := url.Parse(fmt.Sprintf("http://%s:%d", host, freePort(t, host)))
		pu, _ := url.Parse(fmt.Sprintf("http://%s:%d", host, freePort(t, host)))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		if initial != "" {
			initial += ","
		}
		initial += cfg.Name + "=" + pu.String()
		cfgs = append(cfgs, cfg)
		cl.clients = append(cl.clients, cu.String())
	}
	for _, cfg := range cfgs {
		cfg.InitialCluster = initial
		cfg.InitialClusterToken = "runbook-test"
	}
	// Members of a multi-member cluster wait for each other: start all,
	// then wait for each.
	for _, cfg := range cfgs {
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cl.members = append(cl.members, e)
	}
	cl.once = make([]sync.Once, n)
	for i := range cl.members {
		t.Cleanup(func() { cl.close(i) })
	}
	for _, e := range cl.members {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			t.Fatal("etcd member did not become ready")
		}
	}
	return cl
}

// close stops member i (embed.Etcd.Close is not idempotent).
func (cl *cluster) close(i int) { cl.once[i].Do(cl.members[i].Close) }

func (cl *cluster) client(t testing.TB, i int) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{cl.clients[i]}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEtcdJournal(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := j.Spec(ctx, "r1"); err == nil {
		t.Fatal("Spec of a missing run: want ErrNoRun")
	}
	if err := j.Create(ctx, "r1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := j.Create(ctx, "r1", []byte(`{}`)); err == nil {
		t.Fatal("second Create: want ErrRunExists")
	}
	seq, err := j.Claim(ctx, "r1", "a")
	if err != nil || seq != 0 {
		t.Fatalf("Claim: %d %v", seq, err)
	}
	recs := []Record{{Event: EvDone, Step: 1, Attempt: 2, Target: "s1", Msg: "tab\there"}, {Event: EvFail, Step: 0, Attempt: 1, Target: "x@y", Msg: "boom"}}
	if err := j.Append(ctx, "r1", "a", 0, encodeBatch(time.UnixMilli(1000), recs)); err != nil {
		t.Fatal(err)
	}
	// B claims: A is fenced out; B continues the sequence.
	seq, err = j.Claim(ctx, "r1", "b")
	if err != nil || seq != 1 {
		t.Fatalf("Claim by b: %d %v", seq, err)
	}
	if err := j.Append(ctx, "r1", "a", 1, encodeBatch(time.Now(), recs)); err == nil {
		t.Fatal("Append by a fenced owner succeeded")
	}
	if err := j.SetState(ctx, "r1", "a", State{Status: StatusRunning}); err == nil {
		t.Fatal("SetState by a fenced owner succeeded")
	}
	if err := j.Append(ctx, "r1", "b", 1, encodeBatch(time.Now(), recs[:1])); err != nil {
		t.Fatal(err)
	}
	var got []Record
	next, err := j.Read(ctx, "r1", 0, func(_ uint64, b []byte) error {
		return decodeBatch(b, func(r Record) error { got = append(got, r); return nil })
	})
	if err != nil || next != 2 || len(got) != 3 {
		t.Fatalf("Read: next %d, %d records, %v", next, len(got), err)
	}
	if got[0].Msg != "tab here" || got[0].Attempt != 2 || got[0].Step != 1 || got[1].Target != "x@y" || !got[0].At.Equal(time.UnixMilli(1000)) {
		t.Fatalf("records: %+v", got)
	}
	ids, err := j.List(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "r1" {
		t.Fatalf("List: %v %v", ids, err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	ch := j.WatchControl(wctx, "r1")
	if c := <-ch; c != ControlRun {
		t.Fatalf("initial control %q", c)
	}
	if err := j.SetControl(ctx, "r1", ControlPause); err != nil {
		t.Fatal(err)
	}
	if c := <-ch; c != ControlPause {
		t.Fatalf("control %q, want pause", c)
	}
	if err := j.SetControl(ctx, "r1", "bogus"); err == nil {
		t.Fatal("SetControl bogus: want an error")
	}
	wcancel()
	for range ch {
	}
}
