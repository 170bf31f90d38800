package runbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firebreak/firebreak/internal/yamlnode"
)

const topoYAML = `sites:
  a: {role: datacenter}
  b: {role: datacenter}
services:
  login:
    tier: 0
    endpoints: [{site: a, address: 10.0.0.1, port: 443}, {site: b, address: 10.1.0.1, port: 443}]
    dependsOn: [{datastore: db}]
  shop:
    tier: 1
    endpoints: [{site: a, address: 10.0.0.2, port: 443}]
    dependsOn: [login]
  front:
    tier: 2
    endpoints: [{site: a, address: 10.0.0.3, port: 443}]
    dependsOn: [shop]
datastores:
  db: {engine: postgres, primary: a, address: 10.0.0.9, port: 5432, replicas: [{site: b, mode: sync, address: 10.1.0.9, port: 5432}]}
`

// parseWith parses runbook text beside the test topology.
func parseWith(t *testing.T, rb string) (*Runbook, error) {
	t.Helper()
	files := map[string][]byte{"dir/topo.yaml": []byte(topoYAML)}
	return Parse("dir/rb.yaml", []byte(rb), FilesReader(files))
}

func TestParseValid(t *testing.T) {
	rb, err := parseWith(t, `runbook: ok
topology: topo.yaml
limits: {global: 10, perSite: 5, perRack: 2, perDriver: {ssh: 3}}
inventory:
  servers:
    - {name: s1, site: a, rack: r1, role: db, tier: 0, labels: {os: debian}, bmc: "https://10.9.0.1", ssh: "10.0.0.5:22"}
steps:
  - name: power
    targets: {servers: {}}
    action: {driver: redfish, op: power-on}
    idempotent: true
  - name: start
    dependsOn: [power, {step: power, scope: rack}]
    targets: {services: {tiers: [0, 1]}, datastores: {}}
    action: {driver: http, op: request, params: {url: "http://${address}"}}
    verify: {driver: http, op: request, params: {url: "http://${address}/healthz"}, within: 1m, every: 2s}
    retries: 0
    backoff: 2s
    timeout: 1m
    estimate: 5s
    limits: {parallel: 2, perSite: 1}
`)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Topology == nil || len(rb.Servers) != 1 || rb.Servers[0].Labels["os"] != "debian" || rb.Limits.PerDriver["ssh"] != 3 {
		t.Fatalf("parsed %+v", rb)
	}
	s := rb.Steps[1]
	if s.DependsOn[0].Scope != ScopeSite || s.DependsOn[1].Scope != ScopeRack || s.Retries != 0 || s.Verify.Within.Minutes() != 1 || s.Limits.PerSite != 1 || s.Idempotent {
		t.Fatalf("step %+v", s)
	}
	if rb.Steps[0].Retries != DefaultRetries || rb.Steps[0].Timeout != DefaultTimeout || rb.Limits.Global != 10 {
		t.Fatal("defaults not applied")
	}
}

func TestParseErrors(t *testing.T) {
	const head = "runbook: t\ntopology: topo.yaml\n"
	step := "steps:\n  - name: a\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "dir/rb.yaml:1:1: empty document"},
		{"no name", "steps: []\n", "dir/rb.yaml:1:1: runbook file: missing runbook"},
		{"unknown key", head + "stepz: []\n", "dir/rb.yaml:3:1: runbook file: unknown key \"stepz\""},
		{"no steps", head, "no steps"},
		{"bad retries", head + step + "    retries: -1\n", "dir/rb.yaml:8:14: step a retries: -1 is out of range"},
		{"missing action", head + "steps:\n  - name: a\n    targets: {servers: {}}\n", "dir/rb.yaml:4:5: step a: missing action"},
		{"missing targets", head + "steps:\n  - name: a\n    action: {driver: exec, op: run}\n    idempotent: true\n", "dir/rb.yaml:4:5: step a: missing targets"},
		{"needs verify", head + "steps:\n  - name: a\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n", "step a: a step that is not idempotent needs a verify"},
		{"unknown dep", head + step + "    dependsOn: [b]\n", "dir/rb.yaml:8:17: step a dependsOn: unknown step \"b\""},
		{"self dep", head + step + "    dependsOn: [a]\n", "a step cannot depend on itself"},
		{"bad scope", head + step + "    dependsOn: [{step: a, scope: planet}]\n", "unknown value \"planet\""},
		{"cycle", head + step + "    dependsOn: [b]\n  - name: b\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n    dependsOn: [a]\n", "dependency cycle"},
		{"dup step", head + step + strings.Replace(step, "steps:\n", "", 1), "duplicate step name \"a\""},
		{"unknown service", head + "steps:\n  - name: a\n    targets: {services: {names: [nope]}}\n    action: {driver: exec, op: run}\n    idempotent: true\n", "unknown service \"nope\""},
		{"unknown site", head + "inventory:\n  servers:\n    - {name: s1, site: mars}\n" + step, "dir/rb.yaml:5:24: unknown site \"mars\""},
		{"dup server", head + "inventory:\n  servers:\n    - {name: s1, site: a}\n    - {name: s1, site: a}\n" + step, "duplicate server name \"s1\""},
		{"server without site", head + "inventory:\n  servers:\n    - {name: s1}\n" + step, "server 1: missing site"},
		{"services without topology", "runbook: t\nsteps:\n  - name: a\n    targets: {services: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n", "services and datastores come from the topology"},
		{"missing topology file", "runbook: t\ntopology: nope.yaml\n" + step, "dir/rb.yaml:2:11: topology: dir/nope.yaml"},
		{"bad duration", head + step + "    timeout: soon\n", "dir/rb.yaml:8:14: step a timeout: expected a duration"},
		{"bad name", "runbook: \"bad name\"\n" + step, "is not a valid name"},
		{"verify without op", head + step + "    verify: {driver: exec}\n", "step a verify: expected driver and op"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWith(t, tc.src)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, tc.want)
			}
			if _, ok := yamlnode.AsList(err); !ok {
				t.Fatalf("error is not a yamlnode.ErrorList: %T", err)
			}
		})
	}
}

func TestParseTopologyErrorsKeepTheirFile(t *testing.T) {
	files := map[string][]byte{"dir/topo.yaml": []byte("sites:\n  a: {role: moon}\n")}
	_, err := Parse("dir/rb.yaml", []byte("runbook: t\ntopology: topo.yaml\nsteps:\n  - name: a\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n"), FilesReader(files))
	if err == nil || !strings.Contains(err.Error(), "dir/topo.yaml:2:") {
		t.Fatalf("got %v, want the topology's own position", err)
	}
}

func TestInventoryFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "servers.yaml"), []byte("servers:\n  - {name: s1, site: a, rack: r1}\n  - {name: s2, rack: r1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rbPath := filepath.Join(dir, "rb.yaml")
	if err := os.WriteFile(rbPath, []byte("runbook: t\ninventory: servers.yaml\nsteps:\n  - name: a\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(rbPath)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "servers.yaml")+":3:5: server 2: missing site") {
		t.Fatalf("got %v, want the inventory file's position", err)
	}
}

func TestExampleColdStart(t *testing.T) {
	rb, files, err := Load("../../examples/runbooks/cold-start.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files read: %d, want the runbook and the topology", len(files))
	}
	drivers, err := BuildDrivers(&Runbook{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPlan(rb, Options{}, nil); err != nil {
		t.Fatal(err)
	}
	// Every driver and op the example names exists.
	for _, s := range rb.Steps {
		if s.Action.Driver == "ssh" {
			continue
		}
		if _, err := drivers.Get(s.Action.Driver); err != nil {
			t.Fatalf("step %s: %v", s.Name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"runbook: t\nsteps:\n  - name: a\n    targets: {servers: {}}\n    action: {driver: exec, op: run}\n    idempotent: true\n",
		"runbook: t\ninventory:\n  servers:\n    - {name: s1, site: a, rack: r1, labels: {k: v}}\nsteps:\n  - name: a\n    targets: {servers: {labels: {k: v}}}\n    action: {driver: exec, op: run}\n    verify: {driver: exec, op: run, within: 1m}\n  - name: b\n    dependsOn: [a, {step: a, scope: all}]\n    targets: {servers: {}}\n    action: {driver: x, op: y}\n    idempotent: yes\n",
		"runbook: [\n",
		"a: &x [*x, *x]\n",
		"runbook: t\nsteps:\n  - name: a\n    dependsOn: [a]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("fuzz.yaml", data, nil)
		if err != nil {
			if _, ok := yamlnode.AsList(err); !ok {
				t.Fatalf("error is not a yamlnode.ErrorList: %T %v", err, err)
			}
			return
		}
		// A runbook that parses must plan.
		if _, err := NewPlan(rb, Options{}, nil); err != nil {
			t.Fatalf("valid runbook does not plan: %v", err)
		}
	})
}
