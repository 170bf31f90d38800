package api_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/firebreak/firebreak/internal/api"
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
