package ui_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/decide"
)

const chromium = "/usr/bin/chromium"

// browser starts a headless Chromium for t (a fresh profile) and returns a
// tab context. Without Chromium the test is skipped, except in CI
// (CI=true) where it fails: `make test` installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; scripts/install-test-deps.sh installs it", chromium)
		}
		t.Skipf("%s is missing (install the chromium package, or run make test); skipping browser test", chromium)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// within runs actions with a deadline of d (the page must show the change
// within d).
func within(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s within %s: %v", what, d, err)
	}
}

func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// darkMode makes the page prefer a dark colour scheme.
func darkMode() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	})
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	save(t, name, png)
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base+"/login?next=/"),
		chromedp.WaitVisible(chromedp.ID(`token`)),
		chromedp.SendKeys(chromedp.ID(`token`), token),
		chromedp.Submit(chromedp.ID(`token`)),
		chromedp.WaitVisible(chromedp.CSS(`article.site[data-site="pangyo"]`)),
	)
}

// TestBrowserDashboardShowsSiteDown: the dashboard, live over SSE, shows a
// site going down within seconds, with no reload.
func TestBrowserDashboardShowsSiteDown(t *testing.T) {
	s := startStack(t, "127.0.53.1", auth.None)
	ctx := browser(t)
	signIn(t, ctx, s.url, viewerTok)
	within(t, ctx, 10*time.Second, "live updates connected",
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)))
	shot(t, ctx, "dashboard-healthy.png")
	start := time.Now()
	s.fx.SetSite("pangyo", false)
	within(t, ctx, 3*time.Second, "pangyo shown down",
		chromedp.WaitVisible(chromedp.CSS(`article.site[data-site="pangyo"][data-state="down"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-service="login"][data-state="degraded"]`)))
	t.Logf("site down visible in the browser after %s", time.Since(start).Round(time.Millisecond))
	downs := value(t, ctx, chromedp.Text(chromedp.ID(`sites-down`)))
	if strings.TrimSpace(downs) != "1" {
		t.Fatalf("sites down counter %q", downs)
	}
	shot(t, ctx, "dashboard-site-down.png")
	run(t, ctx, "dark phone", darkMode(), chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	overflowX := value(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if overflowX {
		wide := value(t, ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')`))
		t.Errorf("wider than the screen: %s", wide)
		t.Errorf("dashboard scrolls sideways on a phone (wide tables must scroll inside their box)")
	}
	shot(t, ctx, "dashboard-dark-phone.png")
	run(t, ctx, "back to desktop", chromedp.EmulateViewport(1280, 900))
	s.fx.SetStale(true, time.Now().Add(-90*time.Second))
	within(t, ctx, 3*time.Second, "stale banner", chromedp.WaitVisible(chromedp.ID(`stale-banner`)))
	shot(t, ctx, "dashboard-stale.png")
}

// TestBrowserDrain: the drain button is refused without an operator token
// and works with one; the drain is recorded with who and why.
func TestBrowserDrain(t *testing.T) {
	s := startStack(t, "127.0.53.2", auth.Viewer) // anyone may look
	ctx := browser(t)
	drain := func(reason string) {
		run(t, ctx, "drain ansan",
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="drain"][data-site="ansan"]`)),
			chromedp.Click(chromedp.CSS(`button[data-action="drain"][data-site="ansan"]`)),
			chromedp.WaitVisible(chromedp.ID(`reason`)),
			chromedp.SendKeys(chromedp.ID(`reason`), reason),
			chromedp.Click(chromedp.ID(`confirm-ok`)),
		)
	}
	run(t, ctx, "open dashboard anonymously", chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`article.site[data-site="ansan"]`)))
	drain("power maintenance")
	within(t, ctx, 5*time.Second, "refusal shown",
		chromedp.WaitVisible(chromedp.CSS(`#flash .flash.bad`)))
	msg := value(t, ctx, chromedp.Text(chromedp.ID(`flash`)))
	if !strings.Contains(msg, "Refused") {
		t.Fatalf("flash %q", msg)
	}
	shot(t, ctx, "drain-refused.png")
	if n := len(s.fx.AuditLog()); n != 0 {
		t.Fatalf("refused drain was recorded: %d audit records", n)
	}

	signIn(t, ctx, s.url, operatorTok)
	drain("power maintenance")
	within(t, ctx, 5*time.Second, "drain applied and shown",
		chromedp.WaitVisible(chromedp.CSS(`#flash .flash.good`)),
		chromedp.WaitVisible(chromedp.CSS(`article.site[data-site="ansan"] [data-drained]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="undrain"][data-site="ansan"]`)))
	shot(t, ctx, "drain-applied.png")
	log := s.fx.AuditLog()
	if len(log) != 1 || log[0].Who != "alice" || log[0].Reason != "power maintenance" {
		t.Fatalf("audit: %+v", log)
	}
	snap, _ := s.fx.Snapshot(context.Background())
	if o := snap.FindSite("ansan").Drained; o == nil || o.Kind != decide.KindDrain {
		t.Fatalf("no active drain of ansan")
	}
}

// TestBrowserStatusPage: the public status page renders the ongoing and
// the past incident and the uptime bars, at desktop and phone widths.
func TestBrowserStatusPage(t *testing.T) {
	s := startStack(t, "127.0.53.3", auth.None)
	withIncidents(s.fx)
	ctx := browser(t)
	run(t, ctx, "status page", chromedp.Navigate(s.url+"/status"),
		chromedp.WaitVisible(chromedp.ID(`overall`)),
		chromedp.WaitVisible(chromedp.CSS(`.incident.ongoing[data-incident="login"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.past .incident[data-incident="login"]`)))
	headline := value(t, ctx, chromedp.Text(chromedp.ID(`overall`)))
	bars := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.component[data-service="login"] .bar').length`))
	if !strings.Contains(headline, "degraded") || bars != 90 {
		t.Fatalf("headline %q, %d bars", headline, bars)
	}
	shot(t, ctx, "status-desktop.png")
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	overflow := value(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if overflow {
		t.Errorf("status page scrolls sideways on a phone")
	}
	shot(t, ctx, "status-phone.png")
}
