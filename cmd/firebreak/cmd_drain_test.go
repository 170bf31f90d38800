package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/routing"
)

func drainCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDrainNeedsReason(t *testing.T) {
	code, _, stderr := drainCLI(t, "drain", "pangyo", "--endpoints", "127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "--reason is required") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	code, _, stderr = drainCLI(t, "drain", "pangyo", "--reason", "x", "--for", "-1h")
	if code != 2 || !strings.Contains(stderr, "positive duration") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

// TestDrainEndToEnd drains a site of a running 3-site simulation through
// the CLI's break-glass path (--endpoints: the store directly, no API),
// sees routing leave it, lists the override and undrains.
func TestDrainEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sim, err := sitesim.Start(ctx, sitesim.Config{IPs: []string{"127.0.20.11", "127.0.20.12", "127.0.20.13"}, Dir: t.TempDir(),
		Interval: 100 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ep := "--endpoints=" + sim.ClientURL
	site := sitesim.Site(2)
	code, stdout, stderr := drainCLI(t, "drain", site, "--reason", "UPS maintenance", "--for", "2h", "--who", "kim", ep)
	if code != 0 || !strings.Contains(stdout, "override drain-"+site) {
		t.Fatalf("drain: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if _, err := sim.WaitRoute(ctx, func(r *routing.Route) bool { return !sitesim.HasSite(r, site) && len(r.Targets) == 2 }); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = drainCLI(t, "override", "list", ep)
	if code != 0 || !strings.Contains(stdout, "drain-"+site) || !strings.Contains(stdout, "UPS maintenance") || !strings.Contains(stdout, "kim") {
		t.Fatalf("override list: code %d\n%s", code, stdout)
	}
	code, _, stderr = drainCLI(t, "undrain", site, "--reason", "done", ep)
	if code != 0 {
		t.Fatalf("undrain: code %d stderr %q", code, stderr)
	}
	if _, err := sim.WaitRoute(ctx, func(r *routing.Route) bool { return len(r.Targets) == 3 }); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = drainCLI(t, "undrain", site, "--reason", "again", ep)
	if code != 1 || !strings.Contains(stderr, "no such override") {
		t.Fatalf("second undrain: code %d stderr %q", code, stderr)
	}
	resp, err := sim.Client.Get(ctx, "/firebreak/v1/audit/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 2 {
		t.Fatalf("audit log has %d records, want 2 (drain, undrain)", len(resp.Kvs))
	}
}

// freeAddr returns a free host:port on ip (this file's loopback block is
// 127.0.90.x).
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestOverridesThroughAPI runs a real node (firebreak serve: internal/server's
// assembly on an embedded store) with a tokens file and drives status,
// drain, undrain and override through its API: server and token come from
// flags, the environment and a client config file; calls without an
// operator token are refused.
func TestOverridesThroughAPI(t *testing.T) {
	const ip = "127.0.90.1"
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	for _, k := range []string{client.EnvServer, client.EnvToken, client.EnvTokenFile, client.EnvConfig} {
		t.Setenv(k, "")
	}
	backend, err := net.Listen("tcp", "127.0.90.10:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(backend.Addr().String())

	dir := t.TempDir()
	apiAddr := freeAddr(t, ip)
	server := "http://" + apiAddr
	topo := filepath.Join(dir, "t.yaml")
	src := `sites:
  a: {role: datacenter}
  b: {role: datacenter}
nodes:
  - {name: solo, site: a, client: "http://` + freeAddr(t, ip) + `", peer: "http://` + freeAddr(t, ip) + `"}
dns: {zone: test.firebreak.}
services:
  web:
    check: {tcp: {}, interval: 200ms, timeout: 200ms}
    endpoints:
      - {site: a, address: 127.0.90.10, port: ` + port + `}
      - {site: b, address: 127.0.90.10, port: ` + port + `}
`
	tokens := filepath.Join(dir, "tokens")
	opToken, viewerToken := filepath.Join(dir, "op-token"), filepath.Join(dir, "viewer-token")
	for f, b := range map[string]string{topo: src,
		tokens:      "operator-secret-0123456789 operator alice\nviewer-secret-0123456789 viewer grafana\n",
		opToken:     "operator-secret-0123456789\n",
		viewerToken: "viewer-secret-0123456789\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serveErr := startCmd(t, "serve", "-c", topo, "--data-dir", filepath.Join(dir, "data"), "--lease-ttl", "2s",
		"--api-listen", apiAddr, "--dns-listen", "-", "--tokens-file", tokens)

	// status through the API (flags): poll until the node leads and routes.
	var snap view.Snapshot
	deadline := time.Now().Add(40 * time.Second)
	for {
		code, out, errs := drainCLI(t, "status", "--server", server, "--token-file", opToken, "--format", "json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &snap); err != nil {
				t.Fatalf("status json: %v\n%s", err, out)
			}
			if sv := snap.Find("web"); snap.Leader == "solo" && !snap.Stale && snap.Store.Quorum && snap.Topology.Revision == 1 && sv != nil && sv.Route != nil && len(sv.Route.Targets) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: code %d %s\n%+v\nserve: %s", code, errs, snap, serveErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Refused without an operator token: none at all, then a viewer's.
	code, _, stderr := drainCLI(t, "drain", "b", "--reason", "test", "--server", server)
	if code != 1 || !strings.Contains(stderr, "unauthorized (401)") {
		t.Errorf("drain without a token: code %d stderr %q", code, stderr)
	}
	code, _, stderr = drainCLI(t, "drain", "b", "--reason", "test", "--server", server, "--token-file", viewerToken)
	if code != 1 || !strings.Contains(stderr, "forbidden (403)") {
		t.Errorf("drain with a viewer token: code %d stderr %q", code, stderr)
	}
	code, _, stderr = drainCLI(t, "status", "--server", server)
	if code != 1 || !strings.Contains(stderr, "unauthorized") {
		t.Errorf("status without a token: code %d stderr %q", code, stderr)
	}

	// change runs a changing command, again while the node answers 503 (a
	// quorum read timed out under load: the node is stale for a moment and
	// refuses changes, as it must).
	change := func(args ...string) (int, string, string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, out, errs := drainCLI(t, args...)
			if code == 0 || !strings.Contains(errs, "(503)") || time.Now().After(deadline) {
				return code, out, errs
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// drain with server and token from the environment.
	t.Setenv(client.EnvServer, server)
	t.Setenv(client.EnvTokenFile, opToken)
	code, stdout, stderr := change("drain", "b", "--reason", "UPS maintenance", "--for", "2h")
	if code != 0 || !strings.Contains(stdout, "override drain-b: drain b by alice") {
		t.Fatalf("drain: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	t.Setenv(client.EnvServer, "")
	t.Setenv(client.EnvTokenFile, "")

	// The rest with a client config file.
	cfg := filepath.Join(dir, "client.yaml")
	if err := os.WriteFile(cfg, []byte("server: "+server+"\ntokenFile: "+opToken+"\ntimeout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cc := "--client-config=" + cfg
	poll := func(what string, ok func(out string) bool, args ...string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, out, errs := drainCLI(t, args...)
			if code == 0 && ok(out) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: code %d\n%s\n%s", what, code, out, errs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out := poll("routing leaves b", func(out string) bool {
		return strings.Contains(out, "drained by alice") && strings.Contains(out, "a/127.0.90.10") && !strings.Contains(out, "b/127.0.90.10")
	}, "status", cc)
	for _, want := range []string{"answered by:  solo", "leader:       solo", "solo *", "quorum ok", "rev 1", "SERVICE", "OVERRIDE", "UPS maintenance"} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	code, stdout, _ = drainCLI(t, "override", "list", cc)
	if code != 0 || !strings.Contains(stdout, "drain-b") || !strings.Contains(stdout, "UPS maintenance") || !strings.Contains(stdout, "alice") {
		t.Errorf("override list: code %d\n%s", code, stdout)
	}
	code, stdout, stderr = change("override", "freeze", "web", "--reason", "hands off", "--for", "10m", cc)
	if code != 0 || !strings.Contains(stdout, "override freeze-web: freeze web by alice") {
		t.Errorf("freeze: code %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = change("override", "delete", "freeze-web", "--reason", "done", cc)
	if code != 0 || !strings.Contains(stdout, "override freeze-web (freeze web by alice) ended") {
		t.Errorf("override delete: code %d %q %q", code, stdout, stderr)
	}
	code, _, stderr = change("undrain", "b", "--reason", "done", cc)
	if code != 0 {
		t.Fatalf("undrain: code %d stderr %q", code, stderr)
	}
	poll("routing back to b", func(out string) bool {
		return strings.Contains(out, "b/127.0.90.10") && strings.Contains(out, "none in force")
	}, "status", cc)
	code, _, stderr = drainCLI(t, "undrain", "b", "--reason", "again", cc)
	if code != 1 || !strings.Contains(stderr, "no active drain") {
		t.Errorf("second undrain: code %d stderr %q", code, stderr)
	}
	// No node answers: the error says how to break glass.
	code, _, stderr = drainCLI(t, "override", "list", "--server", "http://"+freeAddr(t, ip), "--token-file", opToken)
	if code != 1 || !strings.Contains(stderr, "--endpoints") {
		t.Errorf("no node: code %d stderr %q", code, stderr)
	}
}
