package ui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
	"github.com/firebreak/firebreak/internal/topology"
	"github.com/firebreak/firebreak/internal/ui"
)

// TestServiceStateAgrees: a service whose endpoints are up but whose hard
// dependency is down shows as down, with the reason, on the dashboard and
// as an outage on the public status page (the demo's old-messenger case).
func TestServiceStateAgrees(t *testing.T) {
	src := strings.Replace(viewtest.Sample, "      - {site: ansan, address: 10.2.0.10, port: 443}\n", "", 1)
	src = strings.Replace(src, "    policy: failover\n", "    policy: failover\n    dependsOn: [login]\n", 1)
	top, err := topology.Parse("deps.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	fx := viewtest.New(top, "fb-pangyo")
	fx.SetSite("pangyo", false) // login lived only there; talk fails over to ansan
	u, err := ui.New(fx, ui.Options{Auth: &auth.Authenticator{Anonymous: auth.Viewer}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page := func(path string) string {
		rec := &recorder{h: http.Header{}}
		req, _ := http.NewRequest("GET", path, nil)
		u.ServeHTTP(rec, req)
		if rec.code != 0 && rec.code != 200 {
			t.Fatalf("%s: %d %s", path, rec.code, rec.body.String())
		}
		return rec.body.String()
	}
	dash := page("/")
	for _, want := range []string{`<tr data-service="talk" data-state="down">`, "hard dependency login is down", "ansan · 10.2.0.20:443"} {
		if !strings.Contains(dash, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	status := page("/status")
	if !strings.Contains(status, `data-service="talk" data-state="down"`) || !strings.Contains(status, "Major outage") {
		t.Errorf("status page does not show talk down:\n%s", status)
	}
}
