package demo

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// testBlocks moves the demo onto this package's test addresses.
var testBlocks = map[string]string{"127.0.1.": "127.0.71.", "127.0.2.": "127.0.72.", "127.0.3.": "127.0.73."}

// listening lists every address the demo's topology makes it listen on.
func listening(t *testing.T, top *topology.Topology) []string {
	t.Helper()
	var out []string
	for _, n := range top.Nodes {
		out = append(out, n.API, n.DNS, strings.TrimPrefix(n.Client, "http://"), strings.TrimPrefix(n.Peer, "http://"))
	}
	for _, ep := range top.Endpoints() {
		out = append(out, net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port)))
	}
	return out
}

// TestBurnPangyo runs the whole demo on loopback, burns pangyo and checks
// what a viewer is told: the N+1 company moves, the 2022 layout goes dark,
// a leader survives, and nothing is left listening afterwards.
func TestBurnPangyo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three etcd members")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	src := Relocate(Topology, testBlocks)
	d, err := Start(ctx, Config{Topology: src, DataDir: t.TempDir(), LeaseTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	top := d.Topology()
	if d.Token == "" || d.Leader() == "" {
		t.Fatalf("token %q leader %q after Start", d.Token, d.Leader())
	}
	var welcome bytes.Buffer
	d.WriteWelcome(&welcome)
	if !strings.Contains(welcome.String(), "http://127.0.72.1:8080/") || !strings.Contains(welcome.String(), d.Token) {
		t.Errorf("welcome does not show the dashboard or the token:\n%s", welcome.String())
	}

	// The printed operator token is accepted by every node's API.
	poll := func(url string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, n := range top.Nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := poll("http://" + n.API + "/api/v1/whoami")
			if code == http.StatusOK && strings.Contains(body, `"operator"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: whoami with the operator token: %d %s", n.Name, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	res, err := d.Burn(ctx, "pangyo", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	t.Log(sum.String())
	got := map[string]ServiceOutcome{}
	for _, o := range res.Services {
		got[o.Service] = o
	}
	for _, s := range top.Services {
		inPangyo := false
		for _, ep := range s.Endpoints {
			inPangyo = inPangyo || ep.Site == "pangyo"
		}
		o, ok := got[s.Name]
		if ok != inPangyo {
			t.Errorf("%s: reported %v, has an endpoint in pangyo %v", s.Name, ok, inPangyo)
		}
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(s.Name, "new-"):
			if !o.Moved || o.BlockedBy != "" || o.RoutedIn == 0 || o.DNSIn == 0 {
				t.Errorf("%s: want moved with routing and DNS times, got %+v", s.Name, o)
			}
			for _, site := range o.After {
				if site == "pangyo" {
					t.Errorf("%s: still routed to pangyo: %v", s.Name, o.After)
				}
			}
		case s.Name == "old-messenger":
			// Its gasan endpoint is healthy, but it needs old-login.
			if o.BlockedBy != "old-login" {
				t.Errorf("old-messenger: want blocked by old-login, got %+v", o)
			}
		default:
			if !o.Dark || o.Moved {
				t.Errorf("%s: want dark (no healthy route), got %+v", s.Name, o)
			}
		}
	}
	if res.LeaderAfter == "" || res.LeaderAfter == "fb-pangyo" {
		t.Errorf("leader after the burn = %q (before %q)", res.LeaderAfter, res.LeaderBefore)
	}
	if res.LeaderBefore == "fb-pangyo" && res.LeaderIn == 0 {
		t.Errorf("the leader burnt but no take-over time was measured")
	}

	// Restore brings pangyo back into the routing of the N+1 services.
	if err := d.Restore(ctx, "pangyo"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !d.Sites()["pangyo"] {
		t.Error("pangyo not running after restore")
	}

	if err := d.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	addrs := listening(t, top)
	if len(d.Addresses()) != len(addrs) {
		t.Errorf("Addresses lists %d, want %d", len(d.Addresses()), len(addrs))
	}
	for _, addr := range addrs {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
	}
	if l := d.StillListening(); len(l) != 0 {
		t.Errorf("StillListening after Close: %v", l)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRelocate(t *testing.T) {
	src := Relocate(Topology, testBlocks)
	if bytes.Contains(src, []byte("127.0.1.")) || !bytes.Contains(src, []byte("127.0.73.1:5353")) {
		t.Fatalf("relocation incomplete")
	}
	if _, err := topology.Parse("relocated", src); err != nil {
		t.Fatal(err)
	}
}
