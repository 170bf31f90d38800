package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
