package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/firebreak/firebreak/internal/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func loadExample(t *testing.T, name string) (*topology.Topology, *Result) {
	t.Helper()
	topo, err := topology.Load(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	topo.Source = "examples/" + name // as the CLI shows it from the repository root
	res, err := Analyze(context.Background(), topo, Options{})
	if err != nil {
		t.Fatalf("analyze %s: %v", name, err)
	}
	return topo, res
}

// TestKakao2022 checks what the 2022 topology must show: the login chain
// and the single-site ops tools, as critical findings.
func TestKakao2022(t *testing.T) {
	_, res := loadExample(t, "kakao-2022.yaml")
	for _, tc := range []struct{ id, chain string }{
		{"FB-SPOF-SERVICE/login/pangyo", "login(no endpoint outside pangyo)"},
		{"FB-SPOF-CHAIN/messenger/pangyo", "messenger -> login(no endpoint outside pangyo)"},
		{"FB-SPOF-CHAIN/pay/pangyo", "pay -> login(no endpoint outside pangyo)"},
		{"FB-OPS-SPOF/deploy/pangyo", "deploy(no endpoint outside pangyo)"},
		{"FB-OPS-SPOF/monitoring/pangyo", "monitoring(no endpoint outside pangyo)"},
		{"FB-OPS-SPOF/bastion/pangyo", "bastion(no endpoint outside pangyo)"},
		{"FB-OPS-SPOF/work-chat/pangyo", "work-chat(no endpoint outside pangyo)"},
		{"FB-CP-QUORUM/pangyo", ""},
		{"FB-DNS-SPOF/pangyo", ""},
		{"FB-DATA-NO-REPLICA/session-cache/pangyo", "session-cache(primary pangyo, no replica outside pangyo)"},
	} {
		f := findingByID(res, tc.id)
		if f == nil {
			t.Errorf("missing %s", tc.id)
			continue
		}
		if f.Severity != Critical {
			t.Errorf("%s: severity %s, want critical", tc.id, f.Severity)
		}
		if got := ChainString(f.Chain); got != tc.chain {
			t.Errorf("%s: chain %q, want %q", tc.id, got, tc.chain)
		}
	}
	if f := findingByID(res, "FB-SPOF-CHAIN/taxi/pangyo"); f == nil || !strings.Contains(ChainString(f.Chain), "taxi -> login") {
		t.Errorf("taxi -> login chain missing: %+v", f)
	}
	// The fix for login is complete: new endpoints, and its cache too.
	if f := findingByID(res, "FB-SPOF-SERVICE/login/pangyo"); f == nil ||
		f.Fix != "add an endpoint of login in gasan or ansan; it also needs its hard dependency session-cache, which this loss stops too" {
		t.Errorf("login fix: %+v", f)
	}
	// Every ops tool survives a rack loss (redundant inside pangyo) but not
	// the site.
	for _, f := range res.Findings {
		if strings.HasPrefix(f.ID, RuleSPOFRack+"/") {
			if s := res.Scenario(f.Scenario); s == nil {
				t.Errorf("%s: unknown scenario %s", f.ID, f.Scenario)
			}
			for _, ops := range []string{"deploy", "ci", "source", "registry", "monitoring", "bastion", "work-chat"} {
				if f.Subject == ops {
					t.Errorf("ops tool %s should survive a rack loss: %s", ops, f.ID)
				}
			}
		}
	}
	s := res.Scenario("site:pangyo")
	if s == nil || s.Down != s.Total || s.ControlPlane.Quorum {
		t.Fatalf("site:pangyo: %+v", s)
	}
	if len(s.Customers) == 0 {
		t.Errorf("site:pangyo: no customer class affected")
	}
	if g := res.Scenario("site:gasan"); g == nil || g.Down != 0 {
		t.Errorf("site:gasan should stop nothing: %+v", g)
	}
}

// TestFixedHasNothingHigh: the N+1 topology has no finding of severity
// high or above, and every single-site loss keeps every service up.
func TestFixedHasNothingHigh(t *testing.T) {
	_, res := loadExample(t, "fixed.yaml")
	for _, f := range res.AtLeast(High) {
		t.Errorf("%s %s: %s", f.Severity, f.ID, f.Message)
	}
	for _, s := range res.Scenarios {
		if s.Kind != KindSite {
			continue
		}
		if s.Down != 0 || s.Degraded != 0 || !s.ControlPlane.Quorum {
			t.Errorf("%s: %d down, %d degraded, quorum %v", s.ID, s.Down, s.Degraded, s.ControlPlane.Quorum)
		}
		for _, d := range s.Datastores {
			if d.Status != Failover || d.DataLoss {
				t.Errorf("%s: datastore %s %s (data loss %v)", s.ID, d.Datastore, d.Status, d.DataLoss)
			}
		}
	}
}

func TestGolden(t *testing.T) {
	for _, ex := range []string{"kakao-2022", "fixed"} {
		topo, res := loadExample(t, ex+".yaml")
		for _, format := range []string{FormatText, FormatJSON, FormatDot} {
			t.Run(ex+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Write(&buf, format, res, topo, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", ex+"."+format+".golden")
				if *update {
					if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Errorf("%s differs from %s (run go test ./internal/analysis -update and review the diff)\n%s",
						format, path, firstDiff(buf.String(), string(want)))
				}
			})
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return ""
}

// TestJSONStreamMatchesEncoder: the streaming writer produces exactly what
// encoding/json produces for the whole Result, with and without a name,
// scenarios and findings.
func TestJSONStreamMatchesEncoder(t *testing.T) {
	_, kakao := loadExample(t, "kakao-2022.yaml")
	_, fixed := loadExample(t, "fixed.yaml")
	bare := *fixed
	bare.Name, bare.Scenarios, bare.Findings, bare.Sites = "", nil, nil, nil
	for _, r := range []*Result{kakao, fixed, &bare, {Schema: SchemaVersion}} {
		var got, want bytes.Buffer
		if err := Write(&got, FormatJSON, r, nil, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("streamed JSON differs from encoding/json:\n%s", firstDiff(got.String(), want.String()))
		}
	}
}

// TestJSONRoundTrip: the JSON schema decodes back into the same Result.
func TestJSONRoundTrip(t *testing.T) {
	_, res := loadExample(t, "kakao-2022.yaml")
	var buf bytes.Buffer
	if err := Write(&buf, FormatJSON, res, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != SchemaVersion || len(back.Findings) != len(res.Findings) || len(back.Scenarios) != len(res.Scenarios) {
		t.Fatalf("round trip lost data: %d/%d findings", len(back.Findings), len(res.Findings))
	}
	for i := range res.Findings {
		if back.Findings[i].ID != res.Findings[i].ID || back.Findings[i].Severity != res.Findings[i].Severity {
			t.Fatalf("finding %d: %+v vs %+v", i, back.Findings[i], res.Findings[i])
		}
	}
}

func TestTextColor(t *testing.T) {
	topo, res := loadExample(t, "kakao-2022.yaml")
	var plain, color bytes.Buffer
	if err := Write(&plain, FormatText, res, topo, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&color, FormatText, res, topo, WriteOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain text contains ANSI escapes")
	}
	if !strings.Contains(color.String(), "\x1b[1;31mCRITICAL") {
		t.Error("coloured text has no red CRITICAL")
	}
}

func TestDotScenario(t *testing.T) {
	topo, res := loadExample(t, "kakao-2022.yaml")
	var buf bytes.Buffer
	if err := Write(&buf, FormatDot, res, topo, WriteOptions{Scenario: "rack:pangyo/r3"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `label="kakao-2022: rack pangyo/r3 lost: 2 down, 2 degraded"`) {
		t.Errorf("dot label wrong:\n%s", out[:200])
	}
	if !strings.Contains(out, `"music" [shape=box, label="music\ntier 2, pangyo", fillcolor="#f4a6a6"`) {
		t.Errorf("music not drawn down")
	}
	if err := Write(&buf, FormatDot, res, topo, WriteOptions{Scenario: "site:nowhere"}); err == nil {
		t.Error("unknown scenario accepted")
	}
	if err := Write(&buf, "yaml", res, topo, WriteOptions{}); err == nil {
		t.Error("unknown format accepted")
	}
}
