package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runbookCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunbookDryRunExample(t *testing.T) {
	code, out, errs := runbookCLI(t, "runbook", "run", "../../examples/runbooks/cold-start.yaml", "--dry-run")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{"runbook cold-start: 8 steps", "power-on", "perRack=4", "after: os-ready (target), storage (site)", "not idempotent", "predicted makespan:"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runbookCLI(t, "runbook", "run", "../../examples/runbooks/cold-start.yaml", "--dry-run", "--only", "site=gasan")
	if code != 0 || !strings.Contains(out, "power-on              3 targets") {
		t.Fatalf("--only site=gasan: code %d\n%s", code, out)
	}
}

func TestRunbookErrorsHavePositions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("runbook: bad\nsteps:\n  - name: a\n    action: {driver: exec, op: run}\n    targets: {servers: {}}\n    retries: lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runbookCLI(t, "runbook", "run", path, "--dry-run")
	if code != 1 || !strings.Contains(errs, path+":6:14: step a retries: expected an integer") || !strings.Contains(errs, path+":3:5: step a: a step that is not idempotent needs a verify") {
		t.Fatalf("code %d stderr:\n%s", code, errs)
	}
}

// TestRunbookRunAndStatus runs a small exec runbook against an embedded
// store and reads its status back from the store.
func TestRunbookRunAndStatus(t *testing.T) {
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	rb := `runbook: touch
inventory:
  servers:
    - {name: a1, site: s1, rack: r1}
    - {name: a2, site: s1, rack: r1}
    - {name: b1, site: s2, rack: r1}
steps:
  - name: mark
    targets: {servers: {}}
    action: {driver: exec, op: run, params: {command: "touch ` + marks + `/${name}"}}
    verify: {driver: exec, op: run, params: {command: "test -f ` + marks + `/${name}"}}
  - name: check
    dependsOn: [{step: mark, scope: all}]
    targets: {servers: {sites: [s1]}}
    action: {driver: exec, op: run, params: {command: "test -f ` + marks + `/b1"}}
    idempotent: true
`
	path := filepath.Join(dir, "touch.yaml")
	if err := os.WriteFile(path, []byte(rb), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store")
	code, out, errs := runbookCLI(t, "runbook", "run", path, "--data-dir", store, "--id", "t1", "--log-level", "error")
	if code != 0 {
		t.Fatalf("run: code %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "run t1 (touch): done") || !strings.Contains(out, "total 5/5 done") {
		t.Fatalf("run output:\n%s", out)
	}
	for _, n := range []string{"a1", "a2", "b1"} {
		if _, err := os.Stat(filepath.Join(marks, n)); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs = runbookCLI(t, "runbook", "status", "--data-dir", store)
	if code != 0 || !strings.Contains(out, "run t1 (touch): done") || !strings.Contains(out, "mark") {
		t.Fatalf("status: code %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runbookCLI(t, "runbook", "list", "--data-dir", store)
	if code != 0 || !strings.Contains(out, "t1") || !strings.Contains(out, "done") {
		t.Fatalf("list: code %d\n%s", code, out)
	}
	code, _, errs = runbookCLI(t, "runbook", "pause", "nope", "--data-dir", store)
	if code == 0 || !strings.Contains(errs, "no such run") {
		t.Fatalf("pause of a missing run: code %d %s", code, errs)
	}
}
