package analysis

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/firebreak/firebreak/internal/topology"
)

// parse builds a topology from YAML in a test.
func parse(t *testing.T, src string) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse test topology: %v\n%s", err, src)
	}
	return topo
}

func analyze(t *testing.T, src string) *Result {
	t.Helper()
	res, err := Analyze(context.Background(), parse(t, src), Options{})
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	return res
}

func findingByID(r *Result, id string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

// Three sites and a firebreak node in each, so control-plane rules stay
// quiet unless a case is about them.
const sites3 = `
sites:
  a: {racks: [r1, r2]}
  b: {}
  c: {}
nodes:
  - {name: fa, site: a}
  - {name: fb, site: b}
  - {name: fc, site: c}
`

func TestRules(t *testing.T) {
	type want struct {
		id    string
		sev   Severity
		chain string // ChainString of the finding, when set
	}
	cases := []struct {
		name string
		yaml string
		want []want
		not  []string // IDs or rule prefixes that must not appear
	}{
		{
			name: "ops tool in one site is critical",
			yaml: sites3 + `
services:
  deploy:
    kind: ops
    endpoints:
      - {site: a, rack: r1, address: 10.0.0.1, port: 443}
      - {site: a, rack: r2, address: 10.0.0.2, port: 443}
`,
			want: []want{{id: "FB-OPS-SPOF/deploy/a", sev: Critical, chain: "deploy(no endpoint outside a)"}},
			not:  []string{"FB-SPOF-RACK", "FB-SPOF-SERVICE"},
		},
		{
			name: "ops tool in two sites is fine",
			yaml: sites3 + `
services:
  deploy:
    kind: ops
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
`,
			not: []string{"FB-OPS-SPOF", "FB-OPS-DEGRADED"},
		},
		{
			name: "ops tool stopped by a dependency",
			yaml: sites3 + `
services:
  chat:
    kind: ops
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [login]
  login:
    endpoints:
      - {site: b, address: 10.0.1.2, port: 443}
`,
			want: []want{{id: "FB-OPS-SPOF/chat/b", sev: Critical, chain: "chat -> login(no endpoint outside b)"}},
		},
		{
			name: "single-site service severity follows its tier",
			yaml: sites3 + `
services:
  core: {tier: 0, endpoints: [{site: a, address: 10.0.0.1, port: 443}]}
  side: {tier: 2, endpoints: [{site: b, address: 10.0.1.1, port: 443}]}
  toy:  {tier: 3, endpoints: [{site: c, address: 10.0.2.1, port: 443}]}
`,
			want: []want{
				{id: "FB-SPOF-SERVICE/core/a", sev: Critical},
				{id: "FB-SPOF-SERVICE/side/b", sev: Medium},
				{id: "FB-SPOF-SERVICE/toy/c", sev: Low},
			},
		},
		{
			name: "hard dependency chain through a datastore",
			yaml: sites3 + `
services:
  taxi:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [login]
  login:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443}
      - {site: c, address: 10.0.2.2, port: 443}
    dependsOn: [{datastore: accounts}]
datastores:
  accounts:
    tier: 0
    primary: a
    replicas: [{site: a, mode: sync}]
    backups: [{site: b, immutable: true}]
`,
			want: []want{
				{id: "FB-SPOF-CHAIN/taxi/a", sev: Critical, chain: "taxi -> login -> accounts(primary a, no replica outside a)"},
				{id: "FB-SPOF-CHAIN/login/a", sev: Critical, chain: "login -> accounts(primary a, no replica outside a)"},
				{id: "FB-DATA-NO-REPLICA/accounts/a", sev: Critical},
				{id: "FB-TIER-WEAKEST/login/accounts", sev: High, chain: "login -> accounts(in 1 site(s))"},
				{id: "FB-TIER-WEAKEST/taxi/accounts", sev: High, chain: "taxi -> login -> accounts(in 1 site(s))"},
			},
			not: []string{"FB-SPOF-CHAIN/taxi/b", "FB-SPOF-CHAIN/login/c"},
		},
		{
			name: "replica outside the primary's site keeps dependants up",
			yaml: sites3 + `
services:
  web:
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [{datastore: db}]
datastores:
  db:
    primary: a
    replicas: [{site: b, mode: sync}]
    backups: [{site: c, immutable: true}]
`,
			not: []string{"FB-SPOF", "FB-DATA-NO", "FB-DATA-RPO", "FB-DATA-BACKUP", "FB-DEGRADED"},
		},
		{
			name: "soft dependency only degrades",
			yaml: sites3 + `
services:
  web:
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [{service: photos, hard: false}]
  photos:
    tier: 3
    endpoints: [{site: a, address: 10.0.0.2, port: 443}]
`,
			want: []want{{id: "FB-DEGRADED-DEP/web/a", sev: Info, chain: "web ~> photos(no endpoint outside a)"}},
			not:  []string{"FB-SPOF-CHAIN/web"},
		},
		{
			name: "capacity left below peak degrades",
			yaml: sites3 + `
services:
  pay:
    tier: 0
    peak: 100
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443, capacity: 80}
      - {site: b, address: 10.0.1.1, port: 443, capacity: 40}
`,
			want: []want{
				{id: "FB-CAPACITY/pay/a", sev: High, chain: "pay(capacity 40 of peak 100 outside a)"},
				{id: "FB-CAPACITY/pay/b", sev: High, chain: "pay(capacity 80 of peak 100 outside b)"},
			},
			not: []string{"FB-SPOF-SERVICE"},
		},
		{
			name: "N+1 capacity is fine",
			yaml: sites3 + `
services:
  pay:
    tier: 0
    peak: 100
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443, capacity: 100}
      - {site: b, address: 10.0.1.1, port: 443, capacity: 100}
`,
			not: []string{"FB-CAPACITY", "FB-SPOF"},
		},
		{
			name: "failover policy: only the next site's capacity counts",
			yaml: sites3 + `
services:
  standby:
    tier: 0
    peak: 100
    policy: failover
    failover: [a, b, c]
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443, capacity: 100}
      - {site: b, address: 10.0.1.1, port: 443, capacity: 30}
      - {site: c, address: 10.0.2.1, port: 443, capacity: 100}
  spread:
    tier: 0
    peak: 100
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443, capacity: 100}
      - {site: b, address: 10.0.1.2, port: 443, capacity: 30}
`,
			want: []want{{id: "FB-CAPACITY/standby/a", sev: High, chain: "standby(capacity 30 of peak 100 outside a)"}},
			not:  []string{"FB-CAPACITY/standby/b", "FB-CAPACITY/standby/c", "FB-CAPACITY/spread/b", "FB-CAPACITY-BASELINE"},
		},
		{
			name: "below peak with every site up is reported once",
			yaml: sites3 + `
services:
  small:
    tier: 1
    peak: 100
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443, capacity: 40}
      - {site: b, address: 10.0.1.1, port: 443, capacity: 40}
  first:
    tier: 1
    peak: 100
    policy: failover
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443, capacity: 50}
      - {site: b, address: 10.0.1.2, port: 443, capacity: 100}
`,
			want: []want{
				{id: "FB-CAPACITY-BASELINE/small", sev: Medium},
				{id: "FB-CAPACITY-BASELINE/first", sev: Medium},
			},
			not: []string{"FB-CAPACITY/"},
		},
		{
			name: "a service without endpoints is external",
			yaml: sites3 + `
services:
  saas: {tier: 0}
  web:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [saas]
`,
			want: []want{{id: "FB-NO-ENDPOINTS/saas", sev: Info}},
			not:  []string{"FB-SPOF", "FB-TIER"},
		},
		{
			name: "async replica cannot meet RPO 0",
			yaml: sites3 + `
datastores:
  strict: {primary: a, rpo: 0s, replicas: [{site: b, mode: async}], backups: [{site: c, immutable: true}]}
  synced: {primary: a, rpo: 0s, replicas: [{site: b, mode: sync}], backups: [{site: c, immutable: true}]}
  loose:  {primary: a, rpo: 5m, replicas: [{site: b, mode: async}], backups: [{site: c, immutable: true}]}
`,
			want: []want{{id: "FB-DATA-RPO/strict", sev: Medium}},
			not:  []string{"FB-DATA-RPO/synced", "FB-DATA-RPO/loose", "FB-DATA-NO-REPLICA"},
		},
		{
			name: "backups: none, same site, not immutable",
			yaml: sites3 + `
datastores:
  none:    {tier: 0, primary: a, replicas: [{site: b, mode: sync}]}
  local:   {tier: 1, primary: a, replicas: [{site: b, mode: sync}], backups: [{site: a, immutable: true}]}
  mutable: {tier: 2, primary: a, replicas: [{site: b, mode: sync}], backups: [{site: b}]}
  good:    {tier: 0, primary: a, replicas: [{site: b, mode: sync}], backups: [{site: c, immutable: true}]}
`,
			want: []want{
				{id: "FB-DATA-NO-BACKUP/none", sev: High},
				{id: "FB-DATA-BACKUP-SITE/local/a", sev: High},
				{id: "FB-DATA-NO-IMMUTABLE/mutable", sev: Medium},
			},
			not: []string{"FB-DATA-NO-IMMUTABLE/local", "FB-DATA-NO-IMMUTABLE/none", "FB-DATA-BACKUP-SITE/good", "FB-DATA-NO-IMMUTABLE/good"},
		},
		{
			name: "control plane in one site",
			yaml: `
sites: {a: {}, b: {}}
nodes:
  - {name: n1, site: a}
  - {name: n2, site: a}
  - {name: n3, site: b}
`,
			want: []want{
				{id: "FB-CP-QUORUM/a", sev: Critical},
				{id: "FB-CP-DOMAINS/control-plane", sev: High},
			},
			not: []string{"FB-CP-QUORUM/b", "FB-CP-NONE"},
		},
		{
			name: "two nodes cannot survive either loss",
			yaml: `
sites: {a: {}, b: {}}
nodes:
  - {name: n1, site: a}
  - {name: n2, site: b}
`,
			want: []want{{id: "FB-CP-QUORUM/a", sev: Critical}, {id: "FB-CP-QUORUM/b", sev: Critical}},
		},
		{
			name: "witness makes three failure domains",
			yaml: `
sites: {a: {}, b: {}, w: {role: witness}}
nodes:
  - {name: n1, site: a}
  - {name: n2, site: b}
  - {name: n3, site: w}
`,
			not: []string{"FB-CP"},
		},
		{
			name: "DNS servers in one site",
			yaml: `
sites: {a: {}, b: {}, w: {role: witness}}
dns: {zone: svc.example.com.}
nodes:
  - {name: n1, site: a, dns: "10.0.0.1:53"}
  - {name: n2, site: a, dns: "10.0.0.2:53"}
  - {name: n3, site: w}
`,
			want: []want{{id: "FB-DNS-SPOF/a", sev: Critical}},
			not:  []string{"FB-DNS-SPOF/b", "FB-DNS-SPOF/w"},
		},
		{
			name: "DNS servers in two sites, or secondaries",
			yaml: `
sites: {a: {}, b: {}, w: {role: witness}}
dns: {zone: svc.example.com.}
nodes:
  - {name: n1, site: a, dns: "10.0.0.1:53"}
  - {name: n2, site: b, dns: "10.0.1.1:53"}
  - {name: n3, site: w}
`,
			not: []string{"FB-DNS"},
		},
		{
			name: "no nodes",
			yaml: `
sites: {a: {}}
`,
			want: []want{{id: "FB-CP-NONE/control-plane", sev: High}},
		},
		{
			name: "tier inversion",
			yaml: sites3 + `
services:
  web:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
    dependsOn: [cache, {service: ads, hard: false}]
  cache:
    tier: 2
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443}
      - {site: b, address: 10.0.1.2, port: 443}
  ads:
    tier: 3
    endpoints:
      - {site: a, address: 10.0.0.3, port: 443}
      - {site: b, address: 10.0.1.3, port: 443}
`,
			want: []want{{id: "FB-TIER-INVERSION/web/cache", sev: Low}},
			not:  []string{"FB-TIER-INVERSION/web/ads", "FB-TIER-WEAKEST"},
		},
		{
			name: "tier-0 service only as available as its least redundant hard dependency",
			yaml: sites3 + `
services:
  web:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
      - {site: c, address: 10.0.2.1, port: 443}
    dependsOn: [auth]
  auth:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443}
      - {site: b, address: 10.0.1.2, port: 443}
`,
			want: []want{{id: "FB-TIER-WEAKEST/web/auth", sev: Medium, chain: "web -> auth(in 2 site(s))"}},
		},
		{
			name: "rack loss",
			yaml: sites3 + `
services:
  onerack:
    tier: 0
    endpoints: [{site: a, rack: r1, address: 10.0.0.1, port: 443}]
  tworacks:
    tier: 0
    endpoints:
      - {site: a, rack: r1, address: 10.0.0.2, port: 443}
      - {site: a, rack: r2, address: 10.0.0.3, port: 443}
  tool:
    kind: ops
    endpoints:
      - {site: a, rack: r2, address: 10.0.0.4, port: 443}
      - {site: b, address: 10.0.1.4, port: 443}
`,
			want: []want{
				{id: "FB-SPOF-RACK/onerack/a/r1", sev: High, chain: "onerack(no endpoint outside rack r1 of a)"},
				{id: "FB-SPOF-SERVICE/tworacks/a", sev: Critical},
			},
			not: []string{"FB-SPOF-RACK/tworacks", "FB-SPOF-RACK/tool", "FB-OPS"},
		},
		{
			name: "site pair",
			yaml: sites3 + `
services:
  web:
    tier: 0
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443}
      - {site: b, address: 10.0.1.1, port: 443}
  api:
    tier: 2
    endpoints:
      - {site: a, address: 10.0.0.2, port: 443}
      - {site: b, address: 10.0.1.2, port: 443}
  all:
    endpoints:
      - {site: a, address: 10.0.0.3, port: 443}
      - {site: b, address: 10.0.1.3, port: 443}
      - {site: c, address: 10.0.2.3, port: 443}
datastores:
  db: {primary: a, replicas: [{site: b, mode: sync}], backups: [{site: c, immutable: true}]}
`,
			want: []want{
				{id: "FB-SITE-PAIR/web", sev: Low},
				{id: "FB-SITE-PAIR/api", sev: Info},
				{id: "FB-DATA-SITE-PAIR/db", sev: Info},
			},
			not: []string{"FB-SITE-PAIR/all", "FB-SPOF"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := analyze(t, tc.yaml)
			for _, w := range tc.want {
				f := findingByID(res, w.id)
				if f == nil {
					t.Errorf("missing finding %s; got %v", w.id, ids(res))
					continue
				}
				if f.Severity != w.sev {
					t.Errorf("%s: severity %s, want %s", w.id, f.Severity, w.sev)
				}
				if w.chain != "" && ChainString(f.Chain) != w.chain {
					t.Errorf("%s: chain %q, want %q", w.id, ChainString(f.Chain), w.chain)
				}
				if f.Fix == "" || f.Message == "" {
					t.Errorf("%s: empty message or fix: %+v", w.id, f)
				}
			}
			for _, n := range tc.not {
				for _, f := range res.Findings {
					if f.ID == n || strings.HasPrefix(f.ID, n) {
						t.Errorf("unexpected finding %s (%s)", f.ID, f.Message)
					}
				}
			}
		})
	}
}

func ids(r *Result) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID)
	}
	return out
}

func TestFixHints(t *testing.T) {
	res := analyze(t, sites3+`
services:
  login:
    tier: 0
    peak: 100
    endpoints:
      - {site: a, address: 10.0.0.1, port: 443, capacity: 100}
      - {site: b, address: 10.0.1.1, port: 443, capacity: 30}
  solo: {endpoints: [{site: a, address: 10.0.0.2, port: 443}]}
datastores:
  db: {primary: a, rpo: 0s, backups: [{site: b, immutable: true}]}
`)
	for id, want := range map[string]string{
		"FB-SPOF-SERVICE/solo/a":    "add an endpoint of solo in b or c",
		"FB-CAPACITY/login/a":       "add capacity of at least 70 to login outside a (it has 30 of peak 100 left), e.g. in b or c",
		"FB-DATA-NO-REPLICA/db/a":   "add a sync replica of db outside a, e.g. in b or c",
		"FB-CAPACITY/login/b":       "", // 100 left of peak 100: not degraded
		"FB-DATA-NO-IMMUTABLE/db":   "",
		"FB-SPOF-SERVICE/login/a":   "",
		"FB-DATA-BACKUP-SITE/db/a":  "",
		"FB-SPOF-SERVICE/solo/b":    "",
		"FB-DATA-NO-REPLICA/db/b":   "",
		"FB-OPS-SPOF/login/a":       "",
		"FB-SPOF-CHAIN/solo/a":      "",
		"FB-DEGRADED-DEP/login/a":   "",
		"FB-DATA-RPO/db":            "",
		"FB-TIER-WEAKEST/login/db":  "",
		"FB-CP-QUORUM/a":            "",
		"FB-TIER-INVERSION/login/x": "",
	} {
		f := findingByID(res, id)
		switch {
		case want == "" && f != nil:
			t.Errorf("unexpected %s: %s", id, f.Message)
		case want != "" && f == nil:
			t.Errorf("missing %s; got %v", id, ids(res))
		case want != "" && f.Fix != want:
			t.Errorf("%s fix:\n got %q\nwant %q", id, f.Fix, want)
		}
	}
}

// TestStableIDs: reordering the file changes no finding ID or severity.
func TestStableIDs(t *testing.T) {
	a := analyze(t, sites3+`
services:
  web: {tier: 0, endpoints: [{site: a, address: 10.0.0.1, port: 443}], dependsOn: [auth]}
  auth: {tier: 1, endpoints: [{site: b, address: 10.0.1.1, port: 443}]}
  ops1: {kind: ops, endpoints: [{site: c, address: 10.0.2.1, port: 443}], dependsOn: [auth]}
`)
	b := analyze(t, sites3+`
services:
  ops1: {kind: ops, endpoints: [{site: c, address: 10.0.2.1, port: 443}], dependsOn: [auth]}
  auth: {tier: 1, endpoints: [{site: b, address: 10.0.1.1, port: 443}]}
  web: {tier: 0, endpoints: [{site: a, address: 10.0.0.1, port: 443}], dependsOn: [auth]}
`)
	sa, sb := map[string]Severity{}, map[string]Severity{}
	for _, f := range a.Findings {
		sa[f.ID] = f.Severity
	}
	for _, f := range b.Findings {
		sb[f.ID] = f.Severity
	}
	if len(sa) != len(sb) || len(sa) == 0 {
		t.Fatalf("finding sets differ: %v vs %v", ids(a), ids(b))
	}
	for id, s := range sa {
		if sb[id] != s {
			t.Errorf("%s: %s vs %s", id, s, sb[id])
		}
	}
	if findingByID(a, "FB-OPS-SPOF/ops1/b") == nil {
		t.Errorf("missing FB-OPS-SPOF/ops1/b: %v", ids(a))
	}
}

func TestSeverity(t *testing.T) {
	for _, s := range []Severity{Info, Low, Medium, High, Critical} {
		got, err := ParseSeverity(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil || !strings.Contains(err.Error(), "expected one of") {
		t.Errorf("ParseSeverity(severe): %v", err)
	}
}

// TestNoGoroutineLeak: Analyze's workers are gone when it returns, also
// when it was cancelled.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	topo := parse(t, sites3+`
services:
  web: {endpoints: [{site: a, address: 10.0.0.1, port: 443}]}
`)
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		if i%2 == 1 {
			cancel()
		}
		_, _ = Analyze(ctx, topo, Options{Workers: 4})
		cancel()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
		}
		runtime.Gosched()
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Analyze(ctx, parse(t, sites3), Options{})
	if err == nil {
		t.Fatal("Analyze with a cancelled context returned no error")
	}
}
