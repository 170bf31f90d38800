package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
// the CLI, sees routing leave it, lists the override and undrains.
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
