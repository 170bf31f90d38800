package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/failover/harness"
)

func TestFailoverCLIUsage(t *testing.T) {
	topo := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(topo, []byte("sites:\n  pangyo: {}\n  ansan: {}\ndatastores:\n  db:\n    engine: postgres\n    primary: pangyo\n    replicas: [{site: ansan, mode: sync}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"failover", "db", "--topology", topo, "--accept-data-loss"}, "--reason is required"},
		{[]string{"failover", "nope", "--topology", topo}, `datastore "nope" is not in`},
		{[]string{"failover", "db", "--topology", topo, "--to", "busan"}, `--to "busan": no such site`},
		{[]string{"failover", "db", "--topology", topo, "--mode", "maybe"}, "expected auto, switchover or failover"},
	} {
		code, _, stderr := drainCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestFailoverCLISwitchover runs --check and a planned switchover of a real
// Redis pair through the CLI.
func TestFailoverCLISwitchover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rp, err := harness.StartRedis(ctx, harness.RedisOptions{Replicas: 1, HostBlock: [2]int{69, 69}})
	if err != nil {
		if errors.Is(err, harness.ErrNoBinaries) && os.Getenv("CI") != "true" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	e, err := harness.StartEtcd()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	r := rp.Replicas[0]
	topo := filepath.Join(t.TempDir(), "t.yaml")
	yaml := fmt.Sprintf(`sites:
  pangyo: {}
  ansan: {}
datastores:
  sessions:
    engine: redis
    primary: pangyo
    address: %s
    port: %d
    rpo: 1s
    replicas:
      - {site: ansan, mode: async, address: %s, port: %d}
`, rp.Primary.Host, rp.Primary.Port, r.Host, r.Port)
	if err := os.WriteFile(topo, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ep := e.Client.Endpoints()[0]
	code, out, stderr := drainCLI(t, "failover", "sessions", "--topology", topo, "--endpoints", ep, "--check")
	if code != 0 || !strings.Contains(out, "sessions: ready") || !strings.Contains(out, "ok   replica-outside-site") {
		t.Fatalf("--check: code %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = drainCLI(t, "failover", "sessions", "--topology", topo, "--endpoints", ep, "--reason", "UPS work", "--who", "kim", "--log-level", "error")
	if code != 0 || !strings.Contains(out, "sessions switchover: epoch 1") {
		t.Fatalf("switchover: code %d\n%s%s", code, out, stderr)
	}
	route, err := failover.ReadRoute(ctx, e.Client, "sessions")
	if err != nil || route == nil || route.Targets[0].Port != r.Port {
		t.Fatalf("route = %+v, %v", route, err)
	}
	// The primary is now the former replica and healthy: a failover is
	// refused because its site is not down.
	code, _, stderr = drainCLI(t, "failover", "sessions", "--topology", topo, "--endpoints", ep, "--mode", "failover")
	if code != 1 || !strings.Contains(stderr, "primary's site is not down") {
		t.Fatalf("failover with the site up: code %d %s", code, stderr)
	}

	// The new primary (ansan) dies. No verdict store and no fencer: the
	// site verdict and the fence each need a human override. The lag is
	// known: the earlier CLI runs stored the primary's last position.
	r.Kill()
	base := []string{"failover", "sessions", "--topology", topo, "--endpoints", ep, "--who", "lee", "--log-level", "error"}
	steps := []struct {
		extra []string
		code  int
		want  string
	}{
		{nil, 1, "--assume-site-down"},
		{[]string{"--assume-site-down", "--reason", "ansan flooded"}, 1, "--assume-fenced"},
		{[]string{"--assume-site-down", "--assume-fenced", "--reason", "ansan flooded"}, 0, "sessions failover: epoch 2"},
	}
	for _, st := range steps {
		code, out, stderr := drainCLI(t, append(append([]string{}, base...), st.extra...)...)
		if code != st.code || !strings.Contains(out+stderr, st.want) {
			t.Fatalf("%v: code %d, want %d and %q\n%s%s", st.extra, code, st.code, st.want, out, stderr)
		}
	}
	route, err = failover.ReadRoute(ctx, e.Client, "sessions")
	if err != nil || route == nil || route.Targets[0].Port != rp.Primary.Port {
		t.Fatalf("route after the failover back = %+v, %v", route, err)
	}
	evs, err := failover.Events(ctx, e.Client, "sessions")
	if err != nil || len(evs) == 0 {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Kind != "failover" || last.LossAccepted || last.Overrides["fenced"].Who != "lee" || last.Overrides["siteDown"].Reason != "ansan flooded" || last.Epoch != 2 {
		t.Fatalf("last audit event = %+v", last)
	}
}
