package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
)

const (
	viewerTok   = "viewer-token-0123456789"
	operatorTok = "operator-token-0123456789"
	adminTok    = "admin-token-0123456789"
)

func tokens() *auth.Authenticator {
	return &auth.Authenticator{Tokens: auth.NewTokens(
		auth.Token{Secret: viewerTok, Role: auth.Viewer, Name: "grafana"},
		auth.Token{Secret: operatorTok, Role: auth.Operator, Name: "alice"},
		auth.Token{Secret: adminTok, Role: auth.Admin, Name: "root"},
	)}
}

// newServer starts a server over a fixture whose leader is node (so calls
// are not forwarded) and returns its URL.
func newServer(t *testing.T, node string, f *viewtest.Fixture, mod func(*api.Config)) string {
	t.Helper()
	cfg := api.Config{Node: node, Auth: tokens(), Heartbeat: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := api.New(cfg, f, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func call(t *testing.T, method, url, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, resp.Header, m
}

// noLeaks fails t when goroutines started during the test outlive it.
// Call it first so its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
				return
			}
			http.DefaultClient.CloseIdleConnections()
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func fixture() *viewtest.Fixture { return viewtest.New(viewtest.SampleTopology(), "fb-pangyo") }

func TestAuthRoles(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	drain := `{"reason":"maintenance"}`
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"read without token", "GET", "/api/v1/sites", "", "", 401},
		{"read with bad token", "GET", "/api/v1/sites", "wrong-token-0123456789", "", 401},
		{"read as viewer", "GET", "/api/v1/sites", viewerTok, "", 200},
		{"drain without token", "POST", "/api/v1/sites/ansan/drain", "", drain, 401},
		{"drain as viewer", "POST", "/api/v1/sites/ansan/drain", viewerTok, drain, 403},
		{"drain without reason", "POST", "/api/v1/sites/ansan/drain", operatorTok, `{"reason":""}`, 400},
		{"drain unknown field", "POST", "/api/v1/sites/ansan/drain", operatorTok, `{"reason":"x","color":"red"}`, 400},
		{"drain bad ttl", "POST", "/api/v1/sites/ansan/drain", operatorTok, `{"reason":"x","ttl":"forever"}`, 400},
		{"drain unknown site", "POST", "/api/v1/sites/mars/drain", operatorTok, drain, 404},
		{"drain as operator", "POST", "/api/v1/sites/ansan/drain", operatorTok, drain, 201},
		{"audit as operator", "GET", "/api/v1/audit", operatorTok, "", 403},
		{"audit as admin", "GET", "/api/v1/audit", adminTok, "", 200},
		{"health is public", "GET", "/healthz", "", "", 200},
		{"metrics are public", "GET", "/metrics", "", "", 200},
		{"body too large", "POST", "/api/v1/sites/ansan/drain", operatorTok, `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := call(t, tc.method, url+tc.path, tc.token, tc.body)
			if code != tc.want {
				t.Fatalf("%s %s: status %d, want %d (%v)", tc.method, tc.path, code, tc.want, body)
			}
		})
	}
}

func TestDrainUndrainAudited(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	code, h, body := call(t, "POST", url+"/api/v1/sites/ansan/drain", operatorTok, `{"reason":"power work","ttl":"30m"}`)
	if code != 201 {
		t.Fatalf("drain: %d %v", code, body)
	}
	if h.Get(api.ServedByHeader) != "fb-pangyo" {
		t.Errorf("served by %q", h.Get(api.ServedByHeader))
	}
	_, _, ov := call(t, "GET", url+"/api/v1/overrides", viewerTok, "")
	list := ov["overrides"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["who"] != "alice" || list[0].(map[string]any)["why"] != "power work" {
		t.Fatalf("overrides: %v", ov)
	}
	_, _, route := call(t, "GET", url+"/api/v1/routing/login", viewerTok, "")
	for _, tg := range route["route"].(map[string]any)["targets"].([]any) {
		if tg.(map[string]any)["site"] == "ansan" {
			t.Fatalf("drained site still routed: %v", route)
		}
	}
	code, _, body = call(t, "POST", url+"/api/v1/sites/ansan/undrain", operatorTok, `{"reason":"done"}`)
	if code != 200 || len(body["expired"].([]any)) != 1 {
		t.Fatalf("undrain: %d %v", code, body)
	}
	code, _, _ = call(t, "POST", url+"/api/v1/sites/ansan/undrain", operatorTok, `{"reason":"again"}`)
	if code != 404 {
		t.Fatalf("second undrain: %d, want 404", code)
	}
	_, _, audit := call(t, "GET", url+"/api/v1/audit", adminTok, "")
	recs := audit["audit"].([]any)
	if len(recs) != 2 {
		t.Fatalf("audit records: %v", recs)
	}
	first := recs[0].(map[string]any)
	if first["who"] != "alice" || first["reason"] != "power work" || first["via"] != "fb-pangyo" || first["time"] == "" {
		t.Fatalf("audit record: %v", first)
	}
}

func TestOverrideCreateExpire(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	code, _, body := call(t, "POST", url+"/api/v1/overrides", operatorTok, `{"kind":"freeze","target":"login","reason":"release","ttl":"1h"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id := body["override"].(map[string]any)["id"].(string)
	code, _, body = call(t, "POST", url+"/api/v1/overrides", operatorTok, `{"kind":"explode","target":"login","reason":"x"}`)
	if code != 400 {
		t.Fatalf("bad kind: %d %v", code, body)
	}
	code, _, _ = call(t, "DELETE", url+"/api/v1/overrides/"+id, operatorTok, "")
	if code != 400 {
		t.Fatalf("expire without reason: %d", code)
	}
	code, _, body = call(t, "DELETE", url+"/api/v1/overrides/"+id+"?reason=shipped", operatorTok, "")
	if code != 200 {
		t.Fatalf("expire: %d %v", code, body)
	}
	_, _, ov := call(t, "GET", url+"/api/v1/overrides", viewerTok, "")
	if n := len(ov["overrides"].([]any)); n != 0 {
		t.Fatalf("active overrides after expire: %v", ov)
	}
	_, _, ov = call(t, "GET", url+"/api/v1/overrides?all=true", viewerTok, "")
	if n := len(ov["overrides"].([]any)); n != 1 {
		t.Fatalf("all overrides: %v", ov)
	}
}

func TestReadsAndStale(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-ansan", f, nil)
	f.SetSite("pangyo", false)
	_, _, svc := call(t, "GET", url+"/api/v1/services/login", viewerTok, "")
	s := svc["service"].(map[string]any)
	if s["state"] != view.StateDegraded {
		t.Fatalf("login state %v, want degraded", s["state"])
	}
	eps := s["endpoints"].([]any)
	ops := eps[1].(map[string]any)["opinions"].([]any)
	if len(ops) == 0 {
		t.Fatalf("no opinions on %v", eps[1])
	}
	code, _, _ := call(t, "GET", url+"/api/v1/services/nope", viewerTok, "")
	if code != 404 {
		t.Fatalf("unknown service: %d", code)
	}
	since := time.Now().Add(-time.Minute).UTC()
	f.SetStale(true, since)
	code, h, sites := call(t, "GET", url+"/api/v1/sites", viewerTok, "")
	if code != 200 || h.Get("X-Firebreak-Stale") != "true" || sites["stale"] != true {
		t.Fatalf("stale read: %d %v %v", code, h, sites["stale"])
	}
	code, _, _ = call(t, "GET", url+"/readyz", "", "")
	if code != 503 {
		t.Fatalf("readyz while stale: %d", code)
	}
	_, _, hist := call(t, "GET", url+"/api/v1/history?kind=site", viewerTok, "")
	if n := len(hist["history"].([]any)); n != 1 {
		t.Fatalf("site history: %v", hist)
	}
	for _, p := range []string{"snapshot", "topology", "endpoints", "verdicts", "routing", "nodes", "health", "whoami", "sites/pangyo"} {
		if code, _, body := call(t, "GET", url+"/api/v1/"+p, viewerTok, ""); code != 200 {
			t.Errorf("GET %s: %d %v", p, code, body)
		}
	}
}

func TestForwardToLeader(t *testing.T) {
	noLeaks(t)
	// The leader and the follower share one fixture (one store).
	f := fixture()
	leaderURL := newServer(t, "fb-pangyo", f, nil)
	followerURL := newServer(t, "fb-ansan", f, nil)
	f.Update(view.KindNode, "fb-pangyo", func(r *view.Raw) {
		n := r.Live["fb-pangyo"]
		n.API = strings.TrimPrefix(leaderURL, "http://")
		r.Live["fb-pangyo"] = n
		for _, tn := range r.Topology.Nodes { // the snapshot takes API from the topology
			if tn.Name == "fb-pangyo" {
				tn.API = n.API
			}
		}
	})
	code, h, body := call(t, "POST", followerURL+"/api/v1/sites/ansan/drain", operatorTok, `{"reason":"forwarded"}`)
	if code != 201 {
		t.Fatalf("forwarded drain: %d %v", code, body)
	}
	if h.Get(api.ServedByHeader) != "fb-pangyo" || h.Get(api.ForwardedHeader) != "fb-ansan" {
		t.Fatalf("headers: served by %q, forwarded by %q", h.Get(api.ServedByHeader), h.Get(api.ForwardedHeader))
	}
	log := f.AuditLog()
	if len(log) != 1 || log[0].Via != "fb-ansan->fb-pangyo" {
		t.Fatalf("audit: %+v", log)
	}
	// Without a token the follower refuses before forwarding.
	if code, _, _ := call(t, "POST", followerURL+"/api/v1/sites/ansan/drain", "", `{"reason":"x"}`); code != 401 {
		t.Fatalf("unauthenticated forward: %d", code)
	}
}

func TestEventStream(t *testing.T) {
	noLeaks(t)
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events?kinds=routing", nil)
	req.Header.Set("Authorization", "Bearer "+viewerTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		var ev, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev != "":
				return ev, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if ev, _ := next(); ev != "hello" {
		t.Fatalf("first event %q", ev)
	}
	for range 3 { // the current route of each service
		if ev, _ := next(); ev != "routing" {
			t.Fatalf("initial event %q", ev)
		}
	}
	go f.SetSite("ansan", false)
	for {
		ev, _ := next()
		if ev == "verdict" {
			t.Fatalf("verdict event sent on a routing-only stream")
		}
		if ev == "routing" || ev == "store" {
			break
		}
	}
}

func TestMetrics(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	f.SetSite("ansan", false)
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`firebreak_site_up{site="ansan"} 0`,
		`firebreak_site_up{site="pangyo"} 1`,
		`firebreak_service_state{service="login",state="degraded"} 1`,
		`firebreak_is_leader 1`,
		`firebreak_store_quorum 1`,
		`firebreak_route_targets{service="login"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestCookieNeedsCSRFHeader(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-pangyo", f, nil)
	do := func(csrf bool) int {
		req, _ := http.NewRequest("POST", url+"/api/v1/sites/ansan/drain", strings.NewReader(`{"reason":"x"}`))
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: operatorTok})
		if csrf {
			req.Header.Set(auth.CSRFHeader, "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do(false); c != 403 {
		t.Fatalf("cookie without CSRF header: %d", c)
	}
	if c := do(true); c != 201 {
		t.Fatalf("cookie with CSRF header: %d", c)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := api.New(api.Config{}, fixture(), nil, nil); err == nil {
		t.Fatal("no error for empty node name")
	}
	srv, err := api.New(api.Config{Node: "n"}, fixture(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/sites/ansan/drain", strings.NewReader(`{"reason":"x"}`))
	req.Header.Set("Authorization", "Bearer x")
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("no tokens configured: %d", rec.Code)
	}
	_ = decide.KindDrain
}

func TestDatastoresReadiness(t *testing.T) {
	f := fixture()
	url := newServer(t, "fb-ansan", f, nil)
	code, _, body := call(t, "GET", url+"/api/v1/datastores", viewerTok, "")
	if code != 200 || len(body["datastores"].([]any)) != 0 {
		t.Fatalf("no provider: %d %v", code, body)
	}
	url = newServer(t, "fb-ansan", f, func(c *api.Config) {
		c.Readiness = func() []view.DatastoreReadiness {
			return []view.DatastoreReadiness{{Datastore: "accounts", Engine: "postgres", Mode: view.FailoverAutomatic, PrimarySite: "pangyo", OK: true}}
		}
	})
	if code, _, _ := call(t, "GET", url+"/api/v1/datastores", "", ""); code != 401 {
		t.Fatalf("anonymous datastores: %d", code)
	}
	code, _, body = call(t, "GET", url+"/api/v1/datastores", viewerTok, "")
	ds := body["datastores"].([]any)
	if code != 200 || len(ds) != 1 || ds[0].(map[string]any)["primarySite"] != "pangyo" || body["node"] != "fb-pangyo" {
		t.Fatalf("datastores: %d %v", code, body)
	}
}
