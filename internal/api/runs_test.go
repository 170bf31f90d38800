package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/runbook"
)

// TestRunsRoutes checks the roles of the runbook runs routes: reads need a
// viewer, controls an operator; the handler sees the paths runbook.Handler
// expects.
func TestRunsRoutes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	runs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	f := fixture()
	url := newServer(t, "fb-pangyo", f, func(c *api.Config) { c.Runs = runs })
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/api/v1/runs", "", "", http.StatusUnauthorized},
		{"GET", "/api/v1/runs", viewerTok, "", http.StatusOK},
		{"GET", "/api/v1/runs/", viewerTok, "", http.StatusOK},
		{"GET", "/api/v1/runs/r1", viewerTok, "", http.StatusOK},
		{"POST", "/api/v1/runs/r1/pause", viewerTok, "", http.StatusForbidden},
		{"POST", "/api/v1/runs/r1/explode", operatorTok, "", http.StatusBadRequest},
		{"POST", "/api/v1/runs/r1/pause", operatorTok, `{"reason": "look first"}`, http.StatusOK},
		{"POST", "/api/v1/runs/r1/abort", operatorTok, "", http.StatusOK},
	} {
		if code, _, body := call(t, tc.method, url+tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /api/v1/runs/", "GET /api/v1/runs/", "GET /api/v1/runs/r1", "POST /api/v1/runs/r1/pause", "POST /api/v1/runs/r1/abort"}
	if len(seen) != len(want) {
		t.Fatalf("handler saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("handler call %d: %s, want %s", i, seen[i], want[i])
		}
	}
	url = newServer(t, "fb-ansan", f, nil)
	if code, _, _ := call(t, "GET", url+"/api/v1/runs", viewerTok, ""); code != http.StatusNotFound {
		t.Errorf("no runs handler: %d, want 404", code)
	}
}

// TestRunControlAudited pauses a real run (journal in an embedded etcd)
// through the API over api.Etcd: the control reaches the journal and the
// audit log records who paused which run and why.
func TestRunControlAudited(t *testing.T) {
	e, cli, _, err := sitesim.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "rb.yaml")
	rbSrc := "runbook: audit-test\ninventory:\n  servers:\n    - {name: s000, site: a, rack: r0}\nsteps:\n" +
		"  - name: power\n    action: {driver: sim, op: power-on}\n    targets: {servers: {}}\n    idempotent: true\n"
	if err := os.WriteFile(path, []byte(rbSrc), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, files, err := runbook.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	j := runbook.NewEtcdJournal(cli)
	rn := &runbook.Runner{Journal: j, Drivers: func(*runbook.Runbook) (driver.Registry, error) {
		return driver.Registry{"sim": &driver.SimFleet{}}, nil
	}}
	id, err := rn.Create(ctx, rb, files, runbook.Options{}, "audit-run")
	if err != nil {
		t.Fatal(err)
	}

	st := api.NewEtcd(cli, api.EtcdConfig{Node: "fb-solo"}, nil)
	sctx, scancel := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = st.Run(sctx) }()
	t.Cleanup(func() { scancel(); <-runDone })
	srv, err := api.New(api.Config{Node: "fb-solo", Auth: tokens(), NoForward: true, Runs: runbook.Handler(j, nil, api.RunsPrefix)}, st, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	if code, _, body := call(t, "POST", hs.URL+"/api/v1/runs/"+id+"/pause", operatorTok, `{"reason":"check the racks first"}`); code != http.StatusAccepted {
		t.Fatalf("pause: %d %v", code, body)
	}
	wctx, wcancel := context.WithCancel(ctx)
	ch := j.WatchControl(wctx, id)
	c := <-ch
	wcancel()
	for range ch { // the watch ends with its context
	}
	if c != runbook.ControlPause {
		t.Fatalf("journal control %q, want pause", c)
	}
	recs, err := st.Audit(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Action != "run.pause" || recs[0].Subject != id || recs[0].Who != "alice" || recs[0].Reason != "check the racks first" {
		t.Fatalf("audit: %+v", recs)
	}
}
