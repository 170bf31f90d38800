package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/store"
)

// syncBuffer is a bytes.Buffer safe for the serving goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCmd runs the firebreak command args in the background until the
// test ends; cleanup cancels it, waits for it to stop and fails the test if
// it exits non-zero or does not stop. It returns the command's stderr.
func startCmd(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s: exit %d: %s", args[0], code, errb.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop", args[0])
		}
	})
	return &errb
}

func freeServeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.10.30:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestServeApplyStatus(t *testing.T) {
	dir := t.TempDir()
	client, peer := freeServeURL(t), freeServeURL(t)
	topo := filepath.Join(dir, "t.yaml")
	src := "sites:\n  a: {role: datacenter}\nnodes:\n  - {name: solo, site: a, client: \"" + client + "\", peer: \"" + peer + "\"}\n"
	if err := os.WriteFile(topo, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	serveErr := startCmd(t, "serve", "-c", topo, "--data-dir", filepath.Join(dir, "data"), "--lease-ttl", "2s", "--api-listen", "-", "--dns-listen", "-")

	// status: poll until the node leads.
	var st store.Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"status", "--endpoints", client, "--format", "json", "--timeout", "2s"}, &out, &errb)
		if code == 0 {
			if err := json.Unmarshal(out.Bytes(), &st); err != nil {
				t.Fatalf("status json: %v\n%s", err, out.String())
			}
			if st.Leader == "solo" && st.TopologyRev == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader in status: code %d %+v\nserve: %s", code, st, serveErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].Site != "a" || len(st.Members) != 1 || !st.Members[0].Reachable {
		t.Errorf("status: %+v", st)
	}

	// apply refuses an invalid file with file:line:col and writes nothing.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("sites:\n  a: {role: moon}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"apply", bad, "--endpoints", client}, &out, &errb); code != 1 || !strings.Contains(errb.String(), bad+":2:") {
		t.Errorf("apply bad: code %d, stderr %q", code, errb.String())
	}
	good := filepath.Join(dir, "v2.yaml")
	if err := os.WriteFile(good, []byte(src+"  - {name: other, site: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"apply", good, "--endpoints", client}, &out, &errb); code != 0 || !strings.Contains(out.String(), "rev 2") {
		t.Errorf("apply good: code %d, out %q err %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"status", "--endpoints", client}, &out, &errb); code != 0 || !strings.Contains(out.String(), "rev 2") || !strings.Contains(out.String(), "solo *") {
		t.Errorf("status text: code %d\n%s", code, out.String())
	}
	// The node picked the new version up by watch.
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(serveErr.String(), "topology loaded") || !strings.Contains(serveErr.String(), "rev=2") {
		if time.Now().After(deadline) {
			t.Fatalf("node did not load rev 2:\n%s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"certs", "--dir", dir, "--node", "fb-a=10.0.1.5,fb-a.example.com", "--node", "ops"}, &out, &errb); code != 0 {
		t.Fatalf("certs: %d %s", code, errb.String())
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "fb-a.pem", "fb-a-key.pem", "ops.pem", "ops-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "fb-a-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	if err := (store.TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "fb-a.pem"), KeyFile: filepath.Join(dir, "fb-a-key.pem")}).Check("test"); err != nil {
		t.Error(err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"certs", "--dir", dir, "--node", "fb-b"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "using CA") {
		t.Errorf("second run should reuse the CA: %d %s", code, out.String())
	}
}
