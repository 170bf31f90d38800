package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/demo"
	"github.com/firebreak/firebreak/internal/topology"
)

// TestDemoBurnLeader runs `firebreak demo --burn leader` non-interactively
// on the test block 127.0.75-77.x and reads what a viewer is told: the N+1
// services moved, the 2022 ones went dark, a new leader took over, and
// nothing is left listening.
func TestDemoBurnLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three etcd members")
	}
	src := demo.Relocate(demo.Topology, map[string]string{"127.0.1.": "127.0.75.", "127.0.2.": "127.0.76.", "127.0.3.": "127.0.77."})
	file := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"demo", "-c", file, "--burn", "leader", "--after", "6s", "--exit-after", "100ms",
		"--lease-ttl", "2s", "--wait", "20s"}, &out, &errOut)
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"http://127.0.76.1:8080/status",
		"dig @127.0.76.1 -p 5353",
		"operator token",
		"burnt with the site;",
		"took over after",
		"checked: nothing is left listening",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], "new-") && f[3] != "moved":
			t.Errorf("N+1 service did not move: %s", line)
		case (f[0] == "old-login" || f[0] == "old-taxi" || f[0] == "old-deploy") && !strings.Contains(line, "DARK"):
			// Only when the leader was in pangyo are these affected.
			if strings.Contains(s, "=== pangyo burnt") {
				t.Errorf("2022 service not dark: %s", line)
			}
		}
	}
	top, err := topology.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range top.Nodes {
		for _, a := range []string{n.API, n.DNS} {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still listening after the demo exited", a)
			}
		}
	}
}
