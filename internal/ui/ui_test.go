package ui_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
	"github.com/firebreak/firebreak/internal/ui"
)

const (
	viewerTok   = "viewer-token-0123456789"
	operatorTok = "operator-token-0123456789"
)

type stack struct {
	url string
	fx  *viewtest.Fixture
}

// startStack serves the API with the UI mounted, over a fixture, on host
// (a loopback address of this package's block, so browser cookies of
// different stacks never mix).
func startStack(t *testing.T, host string, anonymous auth.Role) *stack {
	t.Helper()
	fx := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Anonymous: anonymous, Tokens: auth.NewTokens(
		auth.Token{Secret: viewerTok, Role: auth.Viewer, Name: "grafana"},
		auth.Token{Secret: operatorTok, Role: auth.Operator, Name: "alice"})}
	u, err := ui.New(fx, ui.Options{Auth: authn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Node: "fb-pangyo", Auth: authn, UI: u}, fx, fx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
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
	return &stack{url: "http://" + ln.Addr().String(), fx: fx}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestDashboardNeedsSignIn(t *testing.T) {
	s := startStack(t, "127.0.52.1", auth.None)
	code, _, h := get(t, noRedirect(), s.url+"/")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Fatalf("anonymous dashboard: %d %s", code, h.Get("Location"))
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(s.url+"/login", url.Values{"token": {"wrong-token-000000000"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token login: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(s.url+"/login", url.Values{"token": {viewerTok}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `data-site="pangyo"`) {
		t.Fatalf("dashboard after sign-in: %d", resp.StatusCode)
	}
	if resp.Request.URL.Host != strings.TrimPrefix(s.url, "http://") {
		t.Fatalf("open redirect to %s", resp.Request.URL)
	}
	// The status page and its feeds need no sign-in.
	for _, p := range []string{"/status", "/status/summary.json", "/status/feed.atom", "/assets/style.css", "/assets/app.js"} {
		if code, _, _ := get(t, http.DefaultClient, s.url+p); code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
}

// withIncidents adds a resolved 40-minute outage of login two days ago
// and takes site ansan down now (an ongoing degradation of every service).
func withIncidents(fx *viewtest.Fixture) {
	start := time.Now().UTC().Add(-48 * time.Hour)
	var evs []decide.Event
	for _, id := range []string{"login/pangyo/10.1.0.10:443", "login/ansan/10.2.0.10:443"} {
		evs = append(evs,
			decide.Event{Time: start, Kind: decide.EventEndpoint, Subject: id, From: decide.Up, To: decide.Down},
			decide.Event{Time: start.Add(40 * time.Minute), Kind: decide.EventEndpoint, Subject: id, From: decide.Down, To: decide.Up})
	}
	fx.AddHistory(evs...)
	fx.SetSite("ansan", false)
}

func TestStatusFeeds(t *testing.T) {
	s := startStack(t, "127.0.52.2", auth.None)
	withIncidents(s.fx)
	_, body, _ := get(t, http.DefaultClient, s.url+"/status/summary.json")
	var sum ui.Summary
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Status.Indicator != "minor" || len(sum.Components) != 2 {
		t.Fatalf("summary status %+v, %d components (want the 2 public services)", sum.Status, len(sum.Components))
	}
	var ongoing, resolved int
	for _, inc := range sum.Incidents {
		switch {
		case inc.Status == "investigating" && inc.Impact == "minor":
			ongoing++
		case inc.Status == "resolved" && inc.Impact == "major" && inc.Components[0] == "login" && inc.ResolvedAt.Sub(inc.CreatedAt) == 40*time.Minute:
			resolved++
		}
	}
	if ongoing != 2 || resolved != 1 {
		t.Fatalf("incidents: %+v", sum.Incidents)
	}
	for _, c := range sum.Components {
		// Degraded is not down: only login's 40-minute outage costs uptime.
		if c.Status != "degraded_performance" || c.Uptime == nil || (*c.Uptime >= 100) != (c.ID == "talk") {
			t.Errorf("component %+v", c)
		}
	}
	_, body, h := get(t, http.DefaultClient, s.url+"/status/feed.atom")
	var feed struct {
		Entries []struct {
			Title string `xml:"title"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(body), &feed); err != nil || !strings.HasPrefix(h.Get("Content-Type"), "application/atom+xml") {
		t.Fatalf("feed: %v %s", err, h.Get("Content-Type"))
	}
	if len(feed.Entries) != 3 || feed.Entries[2].Title != "Login unavailable (resolved)" {
		t.Fatalf("feed entries: %+v", feed.Entries)
	}
	// Stale: the page says so.
	s.fx.SetStale(true, time.Now().Add(-time.Minute))
	// The status page caches for 5s: ask a fresh UI over the same state.
	u, _ := ui.New(s.fx, ui.Options{}, nil)
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/status/live", nil)
	u.ServeHTTP(rec, req)
	if !strings.Contains(rec.body.String(), "may be out of date") {
		t.Fatalf("stale status page does not say so")
	}
	_ = view.StateDown
}

type recorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }

func artifacts(t *testing.T) string {
	dir := os.Getenv("FIREBREAK_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func save(t *testing.T, name string, png []byte) {
	t.Helper()
	p := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

func TestDashboardDatastoresPanel(t *testing.T) {
	fx := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Anonymous: auth.Viewer}
	rows := []view.DatastoreReadiness{
		{Datastore: "accounts", Engine: "postgres", Mode: view.FailoverAutomatic, Epoch: 2, PrimarySite: "pangyo", PrimaryUp: true,
			ReplicaOutsideSite: true, LagKnown: true, LagNow: "120ms", RPO: "5s", LagWithinRPO: true, CapacityOK: true, FencePathOK: true, OK: true, Summary: "accounts: ready"},
		{Datastore: "search", Engine: "elasticsearch", Mode: view.FailoverManual, PrimarySite: "ansan", RPO: "1m0s", Summary: "search: manual failover"},
	}
	for _, tc := range []struct {
		name  string
		rows  func() []view.DatastoreReadiness
		wants []string
		not   []string
	}{
		{"with provider", func() []view.DatastoreReadiness { return rows },
			[]string{"<h2>Datastores</h2>", `data-datastore="accounts" data-ok="true"`, "120ms / 5s", "epoch 2", `data-datastore="search" data-ok="false"`, "manual"}, nil},
		{"without provider", nil, nil, []string{"<h2>Datastores</h2>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ui.New(fx, ui.Options{Auth: authn, Readiness: tc.rows}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{h: http.Header{}}
			req, _ := http.NewRequest("GET", "/", nil)
			u.ServeHTTP(rec, req)
			body := rec.body.String()
			if rec.code != 0 && rec.code != 200 {
				t.Fatalf("dashboard: %d %s", rec.code, body)
			}
			for _, w := range tc.wants {
				if !strings.Contains(body, w) {
					t.Errorf("dashboard lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(body, w) {
					t.Errorf("dashboard has %q", w)
				}
			}
		})
	}
}
