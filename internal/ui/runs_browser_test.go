package ui_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide/sitesim"
	"github.com/firebreak/firebreak/internal/driver"
	"github.com/firebreak/firebreak/internal/runbook"
	"github.com/firebreak/firebreak/internal/ui"
)

// runsRunbook powers on four simulated servers, then applies a change to
// the two storage ones whose verification can never pass (it checks for a
// change nobody applies), so they fail with a reason.
const runsRunbook = `runbook: ui-cold-start
inventory:
  servers:
    - {name: s000, site: site0, rack: r0, role: storage}
    - {name: s001, site: site1, rack: r1, role: storage}
    - {name: s002, site: site0, rack: r0, role: app}
    - {name: s003, site: site1, rack: r1, role: app}
steps:
  - name: power
    action: {driver: sim, op: power-on}
    verify: {driver: sim, op: power-state, params: {state: "On"}}
    targets: {servers: {}}
    idempotent: true
    backoff: 1ms
  - name: storage
    dependsOn: [power]
    action: {driver: sim, op: apply, params: {change: storage}}
    verify: {driver: sim, op: applied, params: {change: firmware}}
    targets: {servers: {roles: [storage]}}
    retries: 1
    backoff: 1ms
`

// TestBrowserRunbooksPanel runs a small runbook against the SimFleet with a
// real journal (embedded etcd), serves its runs through the API, and checks
// that the dashboard's Runbooks panel shows each step's progress and the
// failures with their reasons.
func TestBrowserRunbooksPanel(t *testing.T) {
	ctx := browser(t)
	e, cli, _, err := sitesim.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); e.Close() })
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(runsRunbook), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, files, err := runbook.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	j := runbook.NewEtcdJournal(cli)
	fleet := &driver.SimFleet{}
	rn := &runbook.Runner{Journal: j, Drivers: func(*runbook.Runbook) (driver.Registry, error) { return driver.Registry{"sim": fleet}, nil },
		FlushInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := rn.Create(rctx, rb, files, runbook.Options{}, "ui-run-1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := rn.Resume(rctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runbook.StatusFailed {
		t.Fatalf("run status %s, want failed (storage cannot verify)", res.Status)
	}

	// A second run, created but not started: it offers pause and abort.
	if _, err := rn.Create(rctx, rb, files, runbook.Options{}, "ui-run-2"); err != nil {
		t.Fatal(err)
	}

	fx := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Tokens: auth.NewTokens(auth.Token{Secret: viewerTok, Role: auth.Viewer, Name: "grafana"},
		auth.Token{Secret: operatorTok, Role: auth.Operator, Name: "alice"})}
	u, err := ui.New(fx, ui.Options{Auth: authn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Node: "fb-pangyo", Auth: authn, UI: u, Runs: runbook.Handler(j, nil, api.RunsPrefix)}, fx, fx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.90.20:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(sctx, ln) }()
	t.Cleanup(func() {
		scancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()

	signIn(t, ctx, base, viewerTok)
	within(t, ctx, 10*time.Second, "runbooks panel with the run",
		chromedp.WaitVisible(chromedp.CSS(`#runbooks article.run[data-run="ui-run-1"][data-status="failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#runbooks tr[data-step="power"] .progress`)))
	count := func(step, what string) string {
		return strings.TrimSpace(value(t, ctx, chromedp.Text(chromedp.CSS(`#runbooks tr[data-step="`+step+`"] td[data-count="`+what+`"]`))))
	}
	if got := count("power", "done"); got != "4 / 4" {
		t.Errorf("power done %q, want 4 / 4", got)
	}
	if got, failed := count("storage", "done"), count("storage", "failed"); got != "0 / 2" || failed != "2" {
		t.Errorf("storage done %q failed %q, want 0 / 2 and 2", got, failed)
	}
	done4 := value(t, ctx, chromedp.Evaluate[string](`document.querySelector('#runbooks tr[data-step="power"] .progress').getAttribute('aria-valuenow')`))
	if done4 != "4" {
		t.Errorf("power progress bar aria-valuenow %q, want 4", done4)
	}
	// The bar is drawn: the done segment fills the power step's bar (CSS
	// widths, which the page's content security policy must allow).
	frac := value(t, ctx, chromedp.Evaluate[float64](`(() => { const b = document.querySelector('#runbooks tr[data-step="power"] .progress'); return b.querySelector('.seg.done').getBoundingClientRect().width / b.getBoundingClientRect().width; })()`))
	if frac < 0.99 {
		t.Errorf("power bar's done segment fills %.2f of the bar, want all", frac)
	}
	fails := value(t, ctx, chromedp.Text(chromedp.CSS(`#runbooks ul.failures`)))
	for _, want := range []string{"s000", "s001", `change "firmware" not applied`} {
		if !strings.Contains(fails, want) {
			t.Errorf("failures list lacks %q:\n%s", want, fails)
		}
	}
	meta := value(t, ctx, chromedp.Text(chromedp.CSS(`#runbooks article.run p`)))
	if !strings.Contains(meta, "4 / 6 targets done") || !strings.Contains(meta, "2 failed") {
		t.Errorf("run summary %q", meta)
	}
	shot(t, ctx, "dashboard-runbooks.png")
	if n := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#runbooks article.run[data-run="ui-run-1"] button').length`)); n != 0 {
		t.Errorf("a finished run offers %d control buttons, want none", n)
	}

	// Pausing needs an operator: a viewer is refused, an operator's pause
	// reaches the run's journal.
	pause := func() {
		run(t, ctx, "pause ui-run-2",
			chromedp.WaitVisible(chromedp.CSS(`#runbooks button[data-run="ui-run-2"][data-control="pause"]`)),
			chromedp.Click(chromedp.CSS(`#runbooks button[data-run="ui-run-2"][data-control="pause"]`)),
			chromedp.WaitVisible(chromedp.ID(`reason`)),
			chromedp.SendKeys(chromedp.ID(`reason`), "check the racks first"),
			chromedp.Click(chromedp.ID(`confirm-ok`)))
	}
	pause()
	within(t, ctx, 5*time.Second, "refusal shown", chromedp.WaitVisible(chromedp.CSS(`#flash .flash.bad`)))
	signIn(t, ctx, base, operatorTok)
	pause()
	within(t, ctx, 5*time.Second, "pause accepted", chromedp.WaitVisible(chromedp.CSS(`#flash .flash.good`)))
	wctx, wcancel := context.WithCancel(rctx)
	ch := j.WatchControl(wctx, "ui-run-2")
	got := <-ch
	wcancel()
	for range ch { // ends with its context
	}
	if got != runbook.ControlPause {
		t.Errorf("ui-run-2 control %q, want pause", got)
	}
}
