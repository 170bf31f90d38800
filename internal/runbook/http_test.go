package runbook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/driver"
)

func TestHandler(t *testing.T) {
	cl := startCluster(t, 1)
	j := NewEtcdJournal(cl.client(t, 0))
	rb, files := fleetRunbook(t, 8, "")
	fleet := &driver.SimFleet{}
	r := newTestRunner(t, j, fleet, &orderCheck{fleet: fleet, rb: rb})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := r.Create(ctx, rb, files, Options{}, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(j, nil, "/api/runs/"))
	t.Cleanup(srv.Close)
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, []byte(b.String())
	}
	code, body := get("/api/runs/")
	if code != 200 || !strings.Contains(string(body), `"id":"h1"`) || !strings.Contains(string(body), `"status":"done"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body = get("/api/runs/h1")
	var p Progress
	if code != 200 || json.Unmarshal(body, &p) != nil || p.Totals().Done != 16 || p.Status != StatusDone {
		t.Fatalf("progress: %d %s", code, body)
	}
	if code, _ = get("/api/runs/nope"); code != http.StatusNotFound {
		t.Fatalf("missing run: %d", code)
	}
	resp, err := http.Post(srv.URL+"/api/runs/h1/pause", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("pause: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/api/runs/h1/explode", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bad control: %d", resp.StatusCode)
	}
}
