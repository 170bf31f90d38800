package store

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/yamlnode"
)

func freeURL(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("listen %s: %v", host, err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// startMember starts a single member in dir on 127.0.11.1 and a client.
func startMember(t *testing.T, dir string) (*Member, *clientv3.Client) {
	t.Helper()
	m, err := StartMember(MemberConfig{
		Name: "m1", Dir: dir, ClientURL: freeURL(t, "127.0.11.1"), PeerURL: freeURL(t, "127.0.11.1"),
		TickMs: 50, ElectionMs: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	select {
	case <-m.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("member not ready")
	}
	cli, err := Dial(context.Background(), ClientConfig{Endpoints: []string{m.ClientURL()}, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return m, cli
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const validTopology = "sites:\n  a: {role: datacenter}\n"

type obs struct {
	Up bool `json:"up"`
}

func TestKVHelpers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, cli := startMember(t, dir)
	ctx := ctxT(t)

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}

	if _, _, err := Get[obs](ctx, cli, ObservationKey("n1", "web/a/10.0.0.1:80")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := Put(ctx, cli, ObservationKey("n1", "web/a/10.0.0.1:80"), obs{Up: true}); err != nil {
		t.Fatal(err)
	}
	v, modRev, err := Get[obs](ctx, cli, ObservationKey("n1", "web/a/10.0.0.1:80"))
	if err != nil || !v.Up {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	// Compare-and-swap: the right revision wins, a stale one loses.
	ok, _, err := CompareAndSwap(ctx, cli, ObservationKey("n1", "web/a/10.0.0.1:80"), modRev, obs{Up: false}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS with current revision: ok=%v err=%v", ok, err)
	}
	ok, _, err = CompareAndSwap(ctx, cli, ObservationKey("n1", "web/a/10.0.0.1:80"), modRev, obs{Up: true}, nil)
	if err != nil || ok {
		t.Fatalf("CAS with stale revision: ok=%v err=%v, want false", ok, err)
	}
	ok, _, err = CompareAndSwap(ctx, cli, EpochKey("pg"), 0, 1, nil)
	if err != nil || !ok {
		t.Fatalf("CAS create: ok=%v err=%v", ok, err)
	}
	if ok, _, _ = CompareAndSwap(ctx, cli, EpochKey("pg"), 0, 2, nil); ok {
		t.Fatal("CAS create of an existing key succeeded")
	}

	// List skips undecodable values and reports them.
	if _, err := cli.Put(ctx, ObservationKey("n2", "bad"), "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := Put(ctx, cli, ObservationKey("n2", "web/a/10.0.0.1:80"), obs{Up: true}); err != nil {
		t.Fatal(err)
	}
	m, _, err := List[obs](ctx, cli, ObservationsPrefix)
	if err == nil || len(m) != 2 || !m["n2/web/a/10.0.0.1:80"].Up {
		t.Errorf("List = %v, %v; want 2 good values and a decode error", m, err)
	}
}

func TestSync(t *testing.T) {
	_, cli := startMember(t, t.TempDir())
	ctx, cancel := context.WithCancel(ctxT(t))
	if _, err := Put(ctx, cli, RoutingKey("web"), obs{Up: true}); err != nil {
		t.Fatal(err)
	}
	type call struct {
		snap   map[string]obs
		events []Event[obs]
	}
	calls := make(chan call, 16)
	done := make(chan error, 1)
	go func() {
		done <- Sync(ctx, cli, RoutingPrefix, func(snap map[string]obs, rev int64, evs []Event[obs]) error {
			calls <- call{snap, evs}
			return nil
		})
	}()
	next := func() call {
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no Sync callback")
			return call{}
		}
	}
	first := next()
	if len(first.snap) != 1 || first.events != nil {
		t.Fatalf("first call %+v, want a snapshot of 1", first)
	}
	if _, err := Put(ctx, cli, RoutingKey("api"), obs{Up: false}); err != nil {
		t.Fatal(err)
	}
	c := next()
	if len(c.snap) != 2 || len(c.events) != 1 || c.events[0].Key != "api" {
		t.Fatalf("after put: %+v", c)
	}
	if _, err := cli.Delete(ctx, RoutingKey("web")); err != nil {
		t.Fatal(err)
	}
	c = next()
	if len(c.snap) != 1 || !c.events[0].Deleted {
		t.Fatalf("after delete: %+v", c)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Sync returned %v, want context.Canceled", err)
	}
}

func TestPublishTopology(t *testing.T) {
	_, cli := startMember(t, t.TempDir())
	ctx := ctxT(t)
	if _, _, _, err := LoadTopology(ctx, cli); !errors.Is(err, ErrNoTopology) {
		t.Fatalf("LoadTopology on an empty store: %v", err)
	}
	rev, changed, err := PublishTopology(ctx, cli, "a.yaml", []byte(validTopology))
	if err != nil || rev != 1 || !changed {
		t.Fatalf("first publish: rev %d changed %v err %v", rev, changed, err)
	}
	rev, changed, err = PublishTopology(ctx, cli, "a.yaml", []byte(validTopology))
	if err != nil || rev != 1 || changed {
		t.Fatalf("same again: rev %d changed %v err %v; want 1, false", rev, changed, err)
	}
	_, _, err = PublishTopology(ctx, cli, "bad.yaml", []byte("sites:\n  a: {role: moon}\n"))
	l, ok := yamlnode.AsList(err)
	if !ok || len(l) == 0 || !strings.HasPrefix(l[0].Error(), "bad.yaml:2:") {
		t.Fatalf("invalid topology: %v; want positioned errors in bad.yaml", err)
	}
	two := validTopology + "  b: {role: witness}\n"
	if rev, _, err = PublishTopology(ctx, cli, "a.yaml", []byte(two)); err != nil || rev != 2 {
		t.Fatalf("second publish: %d %v", rev, err)
	}
	top, rev, src, err := LoadTopology(ctx, cli)
	if err != nil || rev != 2 || string(src) != two || len(top.Sites) != 2 {
		t.Fatalf("LoadTopology = rev %d, %d sites, %v", rev, len(top.Sites), err)
	}
	if _, _, err := LoadTopologyRev(ctx, cli, 1); err != nil {
		t.Errorf("old revision 1 is kept: %v", err)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	m, cli := startMember(t, dir)
	ctx := ctxT(t)
	if _, _, err := PublishTopology(ctx, cli, "a.yaml", []byte(validTopology)); err != nil {
		t.Fatal(err)
	}
	if _, err := Put(ctx, cli, RoutingKey("web"), obs{Up: true}); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	m.Close()

	_, cli2 := startMember(t, dir)
	if _, rev, _, err := LoadTopology(ctx, cli2); err != nil || rev != 1 {
		t.Errorf("topology after restart: rev %d, %v", rev, err)
	}
	if v, _, err := Get[obs](ctx, cli2, RoutingKey("web")); err != nil || !v.Up {
		t.Errorf("routing after restart: %+v, %v", v, err)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	// A data dir that belongs to another cluster.
	m, err := StartMember(MemberConfig{Name: "a", Dir: dir, Token: "one", ClientURL: freeURL(t, "127.0.11.2"), PeerURL: freeURL(t, "127.0.11.2")})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	_, err = StartMember(MemberConfig{Name: "a", Dir: dir, Token: "two", ClientURL: freeURL(t, "127.0.11.2"), PeerURL: freeURL(t, "127.0.11.2")})
	if !errors.Is(err, ErrForeignDataDir) || !strings.Contains(err.Error(), `token "one"`) {
		t.Errorf("foreign data dir: %v", err)
	}
	_, err = StartMember(MemberConfig{Name: "b", Dir: dir, Token: "one", ClientURL: freeURL(t, "127.0.11.2"), PeerURL: freeURL(t, "127.0.11.2")})
	if !errors.Is(err, ErrForeignDataDir) {
		t.Errorf("data dir of another member: %v", err)
	}

	// A dir holding an etcd member without firebreak's marker (plain etcd,
	// or a restored snapshot) is refused unless adopted.
	if err := os.Remove(filepath.Join(dir, markerFile)); err != nil {
		t.Fatal(err)
	}
	cfg := MemberConfig{Name: "a", Dir: dir, Token: "one", ClientURL: freeURL(t, "127.0.11.2"), PeerURL: freeURL(t, "127.0.11.2")}
	if _, err = StartMember(cfg); !errors.Is(err, ErrForeignDataDir) || !strings.Contains(err.Error(), "adopt") {
		t.Errorf("unmarked etcd dir: %v", err)
	}
	cfg.Adopt = true
	m, err = StartMember(cfg)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	m.Close()

	// Unreachable external endpoints fail fast with ErrUnreachable.
	start := time.Now()
	_, err = Dial(context.Background(), ClientConfig{Endpoints: []string{freeURL(t, "127.0.11.3")}, DialTimeout: time.Second, Check: true})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("unreachable endpoint: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("unreachable endpoint took %s", time.Since(start))
	}

	// Wrong TLS files.
	tmp := t.TempDir()
	junk := filepath.Join(tmp, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tls  TLSFiles
		want string
	}{
		{"missing cert", TLSFiles{CertFile: filepath.Join(tmp, "none.pem"), KeyFile: junk}, "load key pair"},
		{"cert without key", TLSFiles{CertFile: junk}, "must be set together"},
		{"bad CA", TLSFiles{CAFile: junk}, "no PEM certificate"},
		{"missing CA", TLSFiles{CAFile: filepath.Join(tmp, "none.pem")}, "read CA file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Dial(context.Background(), ClientConfig{Endpoints: []string{"https://127.0.11.3:1"}, TLS: c.tls, Check: true})
			if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Dial: %v; want ErrTLS mentioning %q", err, c.want)
			}
		})
	}
	_, err = Dial(context.Background(), ClientConfig{Endpoints: []string{"https://127.0.11.3:1"}})
	if !errors.Is(err, ErrTLS) {
		t.Errorf("https endpoint without TLS: %v", err)
	}
	_, err = StartMember(MemberConfig{Name: "c", Dir: t.TempDir(), ClientURL: "https://127.0.11.2:1", PeerURL: freeURL(t, "127.0.11.2")})
	if err == nil || !strings.Contains(err.Error(), "no certFile/keyFile") {
		t.Errorf("https member without certs: %v", err)
	}
}

func TestKeys(t *testing.T) {
	cases := []struct{ got, want string }{
		{TopologyKey(7), "/firebreak/v1/topology/00000000000000000007"},
		{NodeKey("fb-a"), "/firebreak/v1/nodes/fb-a"},
		{ObservationKey("fb-a", "web/a/10.0.0.1:80"), "/firebreak/v1/observations/fb-a/web/a/10.0.0.1:80"},
		{RoutingKey("web"), "/firebreak/v1/routing/web"},
		{ElectionKey(RoleLeader), "/firebreak/v1/election/leader"},
		{SeqKey(AuditPrefix, time.Unix(1, 5), 3), "/firebreak/v1/audit/00000000001000000005-000003"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}
