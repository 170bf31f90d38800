package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/node"
	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// The test's addresses (this package's loopback block is 127.0.74.x).
const (
	nodeIP  = "127.0.74.1"
	backend = "127.0.74.10:9000"
	apiAddr = nodeIP + ":8080"
	dnsAddr = nodeIP + ":5353"
)

const testTopology = `
name: serve-test
sites:
  here: {role: datacenter}
nodes:
  - {name: fb-here, site: here, api: "` + apiAddr + `", dns: "` + dnsAddr + `", peer: "http://` + nodeIP + `:2380", client: "http://` + nodeIP + `:2379"}
dns:
  zone: test.firebreak.
  ttl: 5s
services:
  web:
    tier: 0
    check: {http: {path: /healthz}, interval: 1s, timeout: 500ms}
    endpoints:
      - {site: here, address: 127.0.74.10, port: 9000}
`

// poll calls ok every 50ms until it returns true or the deadline passes.
func poll(t *testing.T, ctx context.Context, what string, ok func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		var done bool
		done, last = ok()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not seen before the deadline (last: %s)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestServeAssembly runs a whole single node as `firebreak serve` does —
// embedded store, Components — against one real HTTP backend, and checks
// each part through its real interface: routing in the store, a DNS answer,
// the API with a token from the tokens file, the status page.
func TestServeAssembly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })

	// The backend.
	ln, err := net.Listen("tcp", backend)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	top, err := topology.Parse("test.yaml", []byte(testTopology))
	if err != nil {
		t.Fatal(err)
	}
	self := top.Node("fb-here")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("viewer-secret-0123456789 viewer grafana\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	comps, err := Components(top, self, Options{TokensFile: tokens, DNSWorkers: 1, DNSSocketBuffer: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range comps {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, ","); got != "probe,decide,failover,dns,api,runbooks" {
		t.Errorf("components = %s", got)
	}
	member, ext, err := node.StoreFor(top, self, self.Name, node.StoreOptions{DataDir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(ctx, node.Config{Name: self.Name, Topology: top, TopologySource: []byte(testTopology),
		Member: member, External: ext, Logger: log, Components: comps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("shutdown: %v", err)
		}
	})

	// Prober + decider: routing appears in the store.
	poll(t, ctx, "routing of web in the store", func() (bool, string) {
		resp, err := n.Client().Get(ctx, store.RoutingKey("web"))
		if err != nil || len(resp.Kvs) == 0 {
			return false, "no routing key"
		}
		var r routing.Route
		if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
			return false, err.Error()
		}
		return len(r.Targets) == 1 && r.Targets[0].Address == "127.0.74.10" && !r.FailOpen, string(resp.Kvs[0].Value)
	})

	// DNS: the node's server answers from that routing.
	poll(t, ctx, "DNS answer for web", func() (bool, string) {
		m := new(dns.Msg)
		m.SetQuestion("web.test.firebreak.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(m, dnsAddr)
		if err != nil {
			return false, err.Error()
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.Authoritative {
			return false, r.String()
		}
		a, ok := r.Answer[0].(*dns.A)
		return ok && a.A.String() == "127.0.74.10", r.String()
	})

	// API: reads need a token; the tokens file's token works.
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+apiAddr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	poll(t, ctx, "API routing of web", func() (bool, string) {
		code, body := get("/api/v1/routing/web", "viewer-secret-0123456789")
		return code == http.StatusOK && strings.Contains(body, "127.0.74.10"), body
	})
	if code, _ := get("/api/v1/routing/web", ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("API read without a token: status %d, want 401 or 403", code)
	}
	if code, body := get("/status", ""); code != http.StatusOK {
		t.Errorf("status page: %d %s", code, body)
	}
	// The prober's metrics are on the API's /metrics.
	poll(t, ctx, "probe metrics on /metrics", func() (bool, string) {
		code, body := get("/metrics", "viewer-secret-0123456789")
		return code == http.StatusOK && strings.Contains(body, `firebreak_probe_check_duration_seconds_count{check="http",result="ok"}`) &&
			strings.Contains(body, `firebreak_probe_transitions_total{check="http",to="up"} 1`), body
	})
	// Runbook runs are served from the store's journal (none yet).
	if code, body := get("/api/v1/runs", "viewer-secret-0123456789"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("runs: %d %s", code, body)
	}
	if !n.IsLeader() {
		t.Error("the only node is not leader")
	}

	// A topology applied to the store (firebreak apply) reaches the DNS
	// server without a restart: a new alias answers, with the new TTL.
	v2 := strings.Replace(strings.Replace(testTopology, "ttl: 5s", "ttl: 7s", 1), "    tier: 0\n", "    tier: 0\n    aliases: [www]\n", 1)
	if _, changed, err := store.PublishTopology(ctx, n.Client(), "v2.yaml", []byte(v2)); err != nil || !changed {
		t.Fatalf("publish v2: changed %v, %v", changed, err)
	}
	poll(t, ctx, "DNS serving the applied topology", func() (bool, string) {
		m := new(dns.Msg)
		m.SetQuestion("www.test.firebreak.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(m, dnsAddr)
		if err != nil {
			return false, err.Error()
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return false, r.String()
		}
		return r.Answer[0].Header().Ttl == 7, r.String()
	})
}

// checkGoroutines fails when, after every part stopped, more goroutines run
// than before the test (allowing a few for the runtime and http's idle
// connections), once they have had 5 s to end.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after the test, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestComponentsOff(t *testing.T) {
	top, err := topology.Parse("test.yaml", []byte(testTopology))
	if err != nil {
		t.Fatal(err)
	}
	comps, err := Components(top, nil, Options{APIListen: "-", DNSListen: "-", NoProbe: true, NoDecide: true, NoRunbooks: true, NoFailover: true})
	if err != nil || len(comps) != 0 {
		t.Fatalf("all off: %d components, err %v", len(comps), err)
	}
	if _, err := Components(nil, nil, Options{}); err == nil {
		t.Error("nil topology accepted")
	}
	bad := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(bad, []byte("short viewer x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Components(top, nil, Options{TokensFile: bad}); err == nil || !strings.Contains(err.Error(), "tokens:1") {
		t.Errorf("bad tokens file: err %v, want one naming tokens:1", err)
	}
}
