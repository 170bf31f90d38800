package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAnalyzeFailOn(t *testing.T) {
	kakao := filepath.Join("..", "..", "examples", "kakao-2022.yaml")
	fixed := filepath.Join("..", "..", "examples", "fixed.yaml")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"analyze", kakao}, 0, ""},
		{[]string{"analyze", "--fail-on", "critical", kakao}, 1, "at or above critical"},
		{[]string{"analyze", "--fail-on", "HIGH", "--format", "json", kakao}, 1, "at or above high"},
		{[]string{"analyze", "--fail-on", "high", fixed}, 0, ""},
		{[]string{"analyze", "--fail-on", "info", fixed}, 0, ""},
		{[]string{"analyze", "--fail-on", "info", kakao}, 1, "at or above info"},
		{[]string{"analyze", "--fail-on", "severe", fixed}, 2, "unknown severity"},
		{[]string{"analyze", "--format", "xml", fixed}, 2, "unknown format"},
		{[]string{"analyze", "no/such/file.yaml"}, 2, "no such file"},
		{[]string{"analyze"}, 2, "accepts 1 arg"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
		if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: stderr %q, want it to contain %q", tc.args, stderr, tc.stderr)
		}
	}
}

func TestAnalyzeBadTopology(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("sites: {a: {}}\nservices:\n  s: {endpoints: [{site: nowhere, address: x, port: 1}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "analyze", path)
	if code != 2 || !strings.Contains(stderr, "bad.yaml:3:") || !strings.Contains(stderr, `unknown site "nowhere"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestAnalyzeFormats(t *testing.T) {
	kakao := filepath.Join("..", "..", "examples", "kakao-2022.yaml")
	code, out, _ := runCLI(t, "analyze", "--format", "json", kakao)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Schema   string `json:"schema"`
		Findings []struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json output: %v", err)
	}
	if doc.Schema != "firebreak.analysis/v1" || len(doc.Findings) == 0 || doc.Findings[0].Severity != "critical" {
		t.Fatalf("json: schema %q, %d findings", doc.Schema, len(doc.Findings))
	}
	_, out, _ = runCLI(t, "analyze", kakao)
	if !strings.Contains(out, "losing pangyo stops 15 of 15 services") || strings.Contains(out, "\x1b[") {
		t.Errorf("text summary missing or coloured into a buffer:\n%s", out[:300])
	}
	code, out, _ = runCLI(t, "analyze", "--format", "dot", "--scenario", "site:gasan", kakao)
	if code != 0 || !strings.HasPrefix(out, "digraph firebreak {") || !strings.Contains(out, "site gasan lost") {
		t.Errorf("dot: exit %d\n%s", code, out)
	}
}

func TestGenTopologyThenAnalyze(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen.yaml")
	code, _, stderr := runCLI(t, "gen-topology", "--services", "120", "--sites", "4", "--racks", "2", "-o", path)
	if code != 0 || !strings.Contains(stderr, "120 services, 1200 endpoints, 4 sites") {
		t.Fatalf("gen-topology: exit %d, %q", code, stderr)
	}
	code, out, stderr := runCLI(t, "analyze", "--timing", "--format", "json", path)
	if code != 0 || !strings.Contains(stderr, "timing: parse") || !strings.Contains(out, `"scenarios"`) {
		t.Fatalf("analyze generated: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "validate", path)
	if code != 0 {
		t.Fatalf("validate generated: %q", stderr)
	}
}

// liveServer serves the API over a fixture with a readiness provider on
// 127.0.80.x (this package's block for the analyze tests) and returns its URL.
func liveServer(t *testing.T, tok string, rows []view.DatastoreReadiness) string {
	t.Helper()
	fx := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Tokens: auth.NewTokens(auth.Token{Secret: tok, Role: auth.Viewer, Name: "ci"})}
	srv, err := api.New(api.Config{Node: "fb-pangyo", Auth: authn, Readiness: func() []view.DatastoreReadiness { return rows }}, fx, fx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.80.2:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func TestAnalyzeLive(t *testing.T) {
	const tok = "analyze-live-token-0123456789"
	fixed := filepath.Join("..", "..", "examples", "fixed.yaml")
	url := liveServer(t, tok, []view.DatastoreReadiness{
		{Datastore: "accounts", Engine: "postgres", Mode: view.FailoverAutomatic, Epoch: 3, PrimarySite: "pangyo", PrimaryUp: true,
			ReplicaOutsideSite: true, LagKnown: true, LagNow: "40ms", RPO: "0s", LagWithinRPO: true, CapacityOK: true, FencePathOK: true, OK: true},
		{Datastore: "sessions", Engine: "redis", Mode: view.FailoverAutomatic, PrimarySite: "ansan", RPO: "5s",
			Summary: "sessions: NOT ready (epoch 0, primary ansan/10.2.0.9:6379): fence-path: no fencer"},
		{Datastore: "search", Engine: "mongodb", Mode: view.FailoverManual, PrimarySite: "gasan", RPO: "1m0s", Summary: "search: manual failover (no failover driver for engine mongodb)"},
	})
	code, out, stderr := runCLI(t, "analyze", "--live", "--server", url, "--token", tok, fixed)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Live failover readiness", "ready     accounts (postgres, automatic, epoch 3): primary in pangyo",
		"lag now 40ms vs RPO 0s", "NOT READY sessions", "fence-path: no fencer", "MANUAL    search (mongodb, manual"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out[strings.Index(out, "Live"):])
		}
	}
	code, out, stderr = runCLI(t, "analyze", "--live", "--format", "json", "--server", url, "--token", tok, fixed)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	var doc struct {
		Schema string `json:"schema"`
		Live   struct {
			Datastores []view.DatastoreReadiness `json:"datastores"`
		} `json:"live"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if doc.Schema != "firebreak.analysis/v1" || len(doc.Live.Datastores) != 3 || !doc.Live.Datastores[0].OK {
		t.Errorf("json live: %+v", doc)
	}
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"analyze", "--live", "--server", url, "--token", "wrong-token-0123456789", fixed}, "--live"},
		{[]string{"analyze", "--live", "--format", "dot", "--server", url, fixed}, "not available with --format dot"},
	} {
		if code, _, stderr := runCLI(t, tc.args...); code != 2 || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
}
