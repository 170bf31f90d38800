package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/yamlnode"
)

const good = `
name: test
sites:
  pangyo: {role: datacenter, racks: [r1, r2], subnets: [10.1.0.0/16]}
  ansan: {}
  chuncheon: {role: witness}
nodes:
  - {name: fb-pangyo, site: pangyo, api: "127.0.0.1:7480", dns: "127.0.0.1:5353", peer: "http://127.0.0.1:2380"}
  - {name: fb-chuncheon, site: chuncheon}
dns: {zone: svc.example.com, ttl: 10s}
decide: {maxAutoEvacuatedSites: 1, holdDown: 15s}
services:
  login:
    tier: 0
    public: Login
    rto: 5m
    policy: failover
    failover: [ansan, pangyo]
    peak: 100
    check: {http: {path: /healthz, body: ok}, interval: 2s, timeout: 1s, rise: 3, fall: 1}
    endpoints:
      - {site: pangyo, rack: r1, address: 10.1.0.10, port: 443, capacity: 60}
      - {site: ansan, address: 10.2.0.10, port: 443, capacity: 60, weight: 3}
    dependsOn: [{datastore: accounts, hard: true}, {service: cache, hard: false}]
  cache:
    endpoints: [{site: pangyo, address: 10.1.0.20, port: 6379}]
  taxi:
    aliases: [t]
    dependsOn: [login]
    endpoints: [{site: ansan, address: 10.2.0.30, port: 80}]
datastores:
  accounts:
    engine: postgres
    primary: pangyo
    replicas: [{site: ansan, mode: sync}]
    backups: [{site: ansan, immutable: true, every: 1h}]
    rpo: 0s
customers:
  drivers:
    services: [taxi]
    count: 1000
    monthlyFee: 39000
    currency: KRW
    sla: {target: 99.9%, credits: [{below: 99, percent: 25}, {below: 99.9, percent: 10}]}
`

func TestParseGood(t *testing.T) {
	top, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := len(top.Sites); got != 3 {
		t.Fatalf("sites = %d, want 3", got)
	}
	if top.Site("chuncheon").Role != RoleWitness || top.Site("ansan").Role != RoleDatacenter {
		t.Errorf("roles: %+v %+v", top.Site("chuncheon"), top.Site("ansan"))
	}
	if top.DNS.Zone != "svc.example.com." || top.DNS.TTL != 10*time.Second {
		t.Errorf("dns = %+v", top.DNS)
	}
	if top.Decide.HoldDown != 15*time.Second || top.Decide.MaxAutoEvacuatedSites != 1 {
		t.Errorf("decide = %+v", top.Decide)
	}
	login := top.Service("login")
	if login == nil {
		t.Fatal("no login service")
	}
	if login.Tier != 0 || login.Policy != PolicyFailover || login.Peak != 100 || login.RTO != 5*time.Minute {
		t.Errorf("login = %+v", login)
	}
	c := login.Check
	if c.Type != CheckHTTP || c.Path != "/healthz" || c.Body != "ok" || c.Status != 200 ||
		c.Interval != 2*time.Second || c.Timeout != time.Second || c.Rise != 3 || c.Fall != 1 {
		t.Errorf("check = %+v", c)
	}
	if len(login.Endpoints) != 2 || login.Endpoints[1].Weight != 3 || login.Endpoints[0].Rack != "r1" {
		t.Errorf("endpoints = %+v %+v", login.Endpoints[0], login.Endpoints[1])
	}
	if id := login.Endpoints[0].ID(); id != "login/pangyo/10.1.0.10:443" {
		t.Errorf("ID = %q", id)
	}
	if len(login.DependsOn) != 2 || !login.DependsOn[0].Hard || login.DependsOn[1].Hard {
		t.Errorf("deps = %+v", login.DependsOn)
	}
	// Defaults.
	cache := top.Service("cache")
	if cache.Tier != DefaultTier || cache.Kind != KindApp || cache.Policy != PolicyActiveActive ||
		cache.Check.Type != CheckTCP || cache.Check.Interval != DefaultCheckInterval ||
		cache.Check.Timeout != DefaultCheckTimeout || cache.Endpoints[0].Capacity != DefaultCapacity ||
		cache.DNSName != "cache" {
		t.Errorf("cache defaults = %+v check %+v", cache, cache.Check)
	}
	if taxi := top.Service("taxi"); len(taxi.DependsOn) != 1 || !taxi.DependsOn[0].Hard || taxi.DependsOn[0].Target != "login" {
		t.Errorf("short dependency = %+v", taxi.DependsOn)
	}
	ds := top.Datastore("accounts")
	if ds == nil || ds.Engine != "postgres" || ds.Replicas[0].Mode != ModeSync || !ds.Backups[0].Immutable || ds.Backups[0].Every != time.Hour {
		t.Errorf("datastore = %+v", ds)
	}
	cc := top.Customers[0]
	if cc.SLA.Target != 99.9 || cc.MonthlyFee != 39000 || len(cc.SLA.Credits) != 2 || cc.SLA.Credits[0].Below != 99.9 {
		t.Errorf("customer = %+v", cc)
	}
	if len(top.Datacenters()) != 2 || len(top.Endpoints()) != 4 {
		t.Errorf("datacenters %d endpoints %d", len(top.Datacenters()), len(top.Endpoints()))
	}
}

// TestParseErrors checks that each kind of mistake is reported at the right
// position with a message that says what was expected.
func TestParseErrors(t *testing.T) {
	base := "sites:\n  pangyo: {}\n  ansan: {}\n  chuncheon: {role: witness}\n"
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in the error text
	}{
		{"unknown top key", base + "servics: {}\n", []string{"f.yaml:5:1:", `unknown key "servics"`, "expected one of"}},
		{"wrong type", base + "services:\n  a:\n    tier: high\n    endpoints: [{site: pangyo, address: a, port: 1}]\n", []string{"f.yaml:7:11:", "tier: expected an integer", `"high"`}},
		{"tier range", base + "services:\n  a: {tier: 7}\n", []string{"f.yaml:6:13:", "out of range (expected 0 to 3)"}},
		{"port range", base + "services:\n  a:\n    endpoints: [{site: pangyo, address: a, port: 70000}]\n", []string{"f.yaml:7:", "port: 70000 is out of range (expected 1 to 65535)"}},
		{"missing port", base + "services:\n  a:\n    endpoints: [{site: pangyo, address: a}]\n", []string{"f.yaml:7:17:", "missing port"}},
		{"unknown site", base + "services:\n  a:\n    endpoints: [{site: busan, address: a, port: 1}]\n", []string{"f.yaml:7:24:", `unknown site "busan"`, "pangyo, ansan, chuncheon"}},
		{"witness endpoint", base + "services:\n  a:\n    endpoints: [{site: chuncheon, address: a, port: 1}]\n", []string{`site "chuncheon" is a witness`}},
		{"witness primary", base + "datastores:\n  d: {primary: chuncheon}\n", []string{"f.yaml:6:16:", "witness"}},
		{"unknown dependency", base + "services:\n  a: {dependsOn: [nope]}\n", []string{"f.yaml:6:19:", `unknown service or datastore "nope"`}},
		{"cycle", base + "services:\n  a: {dependsOn: [b]}\n  b: {dependsOn: [c]}\n  c: {dependsOn: [a]}\n", []string{"dependency cycle a -> b -> c -> a"}},
		{"self cycle", base + "services:\n  a: {dependsOn: [a]}\n", []string{"dependency cycle a -> a"}},
		{"duplicate service", base + "services:\n  a: {}\n  a: {}\n", []string{"f.yaml:7:3:", `duplicate service name "a"`}},
		{"duplicate key", base + "services:\n  a: {tier: 1, tier: 2}\n", []string{`duplicate key "tier"`}},
		{"bad duration", base + "services:\n  a: {rto: 5 minutes}\n", []string{"f.yaml:6:12:", "expected a duration", `"5 minutes"`}},
		{"negative duration", base + "services:\n  a: {rto: -5m}\n", []string{"zero or more"}},
		{"bad policy", base + "services:\n  a: {policy: random}\n", []string{`unknown value "random"`, "active-active, failover, weighted, nearest"}},
		{"two check types", base + "services:\n  a: {check: {tcp: {}, http: {}}}\n", []string{"more than one check type"}},
		{"timeout > interval", base + "services:\n  a: {check: {tcp: {}, interval: 1s, timeout: 2s}}\n", []string{"timeout 2s is longer than interval 1s"}},
		{"exec without command", base + "services:\n  a: {check: {exec: {}}}\n", []string{"exec needs a command"}},
		{"unknown rack", "sites:\n  p: {racks: [r1]}\nservices:\n  a:\n    endpoints: [{site: p, rack: r9, address: a, port: 1}]\n", []string{`unknown rack "r9"`}},
		{"bad name", base + "services:\n  'a b': {}\n", []string{`service name "a b"`, "DNS label"}},
		{"no sites", "services: {}\n", []string{"no sites declared"}},
		{"site not string", "sites:\n  p: {}\nservices:\n  a:\n    endpoints: [{site: 1, address: a, port: 1}]\n", []string{"site: expected a string, found integer"}},
		{"bad yaml", "sites: [\n", []string{"f.yaml:", "invalid YAML"}},
		{"empty", "", []string{"empty document"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1:1:", "topology: expected a mapping, found a list"}},
		{"merge key", base + "x: &x {tier: 1}\n", []string{`unknown key "x"`}},
		{"name clash", base + "services:\n  a: {}\ndatastores:\n  a: {primary: pangyo}\n", []string{"a service has the same name"}},
		{"dns clash", base + "services:\n  a: {dnsName: b}\n  b: {}\n", []string{`DNS name "b" is already used`}},
		{"failover without policy", base + "services:\n  a: {failover: [pangyo]}\n", []string{"failover order given but policy is active-active"}},
		{"failover site without endpoint", base + "services:\n  a: {policy: failover, failover: [ansan], endpoints: [{site: pangyo, address: a, port: 1}]}\n", []string{`site "ansan" has no endpoint`}},
		{"duplicate endpoint", base + "services:\n  a: {endpoints: [{site: pangyo, address: a, port: 1}, {site: pangyo, address: a, port: 1}]}\n", []string{"duplicate endpoint a:1"}},
		{"replica mode", base + "datastores:\n  d: {primary: pangyo, replicas: [{site: ansan, mode: semi}]}\n", []string{`unknown value "semi"`, "sync, async"}},
		{"bad subnet", "sites:\n  p: {subnets: [10.0.0.0]}\n", []string{"is not a CIDR"}},
		{"node bad api", base + "nodes: [{name: n, site: pangyo, api: nowhere}]\n", []string{`node n api: "nowhere" is not host:port`}},
		{"customer unknown service", base + "customers:\n  c: {services: [zzz]}\n", []string{`unknown service or datastore "zzz"`}},
		{"sla over 100", base + "customers:\n  c: {services: [], sla: {target: 101}}\n", []string{"out of range (expected 0 to 100)", "expected at least one service"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yaml)
			}
			if _, ok := yamlnode.AsList(err); !ok {
				t.Errorf("error is %T, want yamlnode.ErrorList", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestAllErrorsReported checks that independent mistakes are all reported,
// sorted by position.
func TestAllErrorsReported(t *testing.T) {
	src := `sites:
  p: {}
services:
  a:
    tier: 9
    endpoints: [{site: q, address: x, port: 0}]
  b:
    rto: soon
    dependsOn: [zz]
`
	_, err := Parse("f.yaml", []byte(src))
	l, ok := yamlnode.AsList(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	if len(l) != 5 {
		t.Fatalf("got %d errors, want 5:\n%v", len(l), err)
	}
	for i := 1; i < len(l); i++ {
		if l[i].Line < l[i-1].Line {
			t.Errorf("errors not sorted:\n%v", err)
		}
	}
}

func TestAliasesAndAnchors(t *testing.T) {
	src := `sites:
  p: {}
  q: {}
services:
  a:
    check: &chk {http: {path: /h}, interval: 2s, timeout: 1s}
    endpoints: [{site: p, address: x, port: 1}]
  b:
    check: *chk
    endpoints: [{site: q, address: y, port: 1}]
`
	top, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c := top.Service("b").Check; c.Path != "/h" || c.Interval != 2*time.Second {
		t.Errorf("aliased check = %+v", c)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("sites:\n  p: {}\nname: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("n")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(": &a")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(" [*a")
		b.WriteString(string(rune('0' + i - 1)))
		b.WriteString(strings.Repeat(", *a"+string(rune('0'+i-1)), 9))
		b.WriteString("]\n")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = Parse("bomb.yaml", []byte(b.String()))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("alias bomb not bounded")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	top, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if top.Source != p {
		t.Errorf("Source = %q", top.Source)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file error = %v", err)
	}
}

// TestExamples parses every topology shipped in examples/.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("sites: {p: {}}\nservices: {a: {dependsOn: [a]}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("sites:\n  p: {racks: [r]}\nservices:\n  s: {endpoints: [{site: p, rack: r, address: x, port: 1}]}\n"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("fuzz.yaml", data)
		if err == nil && top == nil {
			t.Fatal("nil topology without error")
		}
		if err != nil {
			if top != nil {
				t.Fatal("topology returned with error")
			}
			l, ok := yamlnode.AsList(err)
			if !ok || len(l) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
		}
	})
}

// TestDocExample keeps docs/topology.md's complete example valid.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/topology.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	start := strings.Index(s, "## A complete example")
	if start < 0 {
		t.Fatal("docs/topology.md lost its complete example")
	}
	s = s[start:]
	b := strings.Index(s, "```yaml\n")
	e := strings.Index(s[b+8:], "```")
	if b < 0 || e < 0 {
		t.Fatal("no yaml block in the example section")
	}
	if _, err := Parse("docs/topology.md", []byte(s[b+8:b+8+e])); err != nil {
		t.Fatalf("the documented example does not parse:\n%v", err)
	}
}
