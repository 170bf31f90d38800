package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/client"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
)

const opTok = "operator-token-0123456789"

func serve(t *testing.T) (string, *viewtest.Fixture) {
	t.Helper()
	fx := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Tokens: auth.NewTokens(auth.Token{Secret: opTok, Role: auth.Admin, Name: "alice"})}
	srv, err := api.New(api.Config{Node: "fb-pangyo", Auth: authn}, fx, fx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.54.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), fx
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("from-token-file\n"), 0o600)
	cfgFile := filepath.Join(dir, "client.yaml")
	os.WriteFile(cfgFile, []byte("server: http://file:1\ntokenFile: "+tokFile+"\ntimeout: 3s\n"), 0o600)
	t.Setenv(client.EnvServer, "")
	t.Setenv(client.EnvToken, "")
	t.Setenv(client.EnvTokenFile, "")
	t.Setenv(client.EnvConfig, cfgFile)

	c, err := client.LoadConfig(client.Config{}, "")
	if err != nil || c.Server != "http://file:1" || c.Token != "from-token-file" || c.Timeout != 3*time.Second {
		t.Fatalf("file: %+v %v", c, err)
	}
	t.Setenv(client.EnvServer, "http://env:2")
	t.Setenv(client.EnvToken, "from-env")
	c, _ = client.LoadConfig(client.Config{}, "")
	if c.Server != "http://env:2" || c.Token != "from-env" {
		t.Fatalf("env: %+v", c)
	}
	c, _ = client.LoadConfig(client.Config{Server: "flag:3", Token: "from-flag"}, "")
	if c.Server != "flag:3" || c.Token != "from-flag" {
		t.Fatalf("flags: %+v", c)
	}
	os.WriteFile(cfgFile, []byte("server: http://x\ncolour: red\n"), 0o600)
	if _, err := client.LoadConfig(client.Config{}, ""); err == nil || !strings.Contains(err.Error(), "client.yaml:2:1") {
		t.Fatalf("unknown key error: %v", err)
	}
	if _, err := client.LoadConfig(client.Config{}, filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing explicit config file accepted")
	}
}

func TestClientCalls(t *testing.T) {
	addr, fx := serve(t)
	ctx := context.Background()
	anon, _ := client.New(client.Config{Server: addr})
	if _, err := anon.Snapshot(ctx); client.StatusCode(err) != 401 {
		t.Fatalf("anonymous snapshot: %v", err)
	}
	c, err := client.New(client.Config{Server: "http://" + addr + "/", Token: opTok})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil || len(snap.Sites) != 3 || snap.Node != "fb-pangyo" {
		t.Fatalf("snapshot: %v", err)
	}
	tbl, err := c.Routing(ctx)
	if err != nil || len(tbl.Routes) != 3 {
		t.Fatalf("routing: %v", err)
	}
	o, err := c.Drain(ctx, "ansan", "network work", 30*time.Minute)
	if err != nil || o.Who != "alice" || o.Expires.Sub(o.Created) != 30*time.Minute {
		t.Fatalf("drain: %+v %v", o, err)
	}
	if _, err := c.Drain(ctx, "ansan", "", 0); client.StatusCode(err) != 400 {
		t.Fatalf("drain without reason: %v", err)
	}
	ovs, err := c.Overrides(ctx, false)
	if err != nil || len(ovs) != 1 {
		t.Fatalf("overrides: %v %v", ovs, err)
	}
	if _, err := c.Undrain(ctx, "ansan", "done"); err != nil {
		t.Fatal(err)
	}
	f, err := c.SetOverride(ctx, "freeze", "", "release", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExpireOverride(ctx, f.ID, "shipped"); err != nil {
		t.Fatal(err)
	}
	audit, err := c.Audit(ctx, time.Time{}, 0)
	if err != nil || len(audit) != 4 {
		t.Fatalf("audit: %d %v", len(audit), err)
	}
	fx.SetSite("pangyo", false)
	hist, err := c.History(ctx, time.Now().Add(-time.Hour), "site", 0)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history: %v %v", hist, err)
	}

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	routes := 0
	stop := errors.New("stop")
	err = c.Watch(wctx, []string{"routing"}, func(ev client.Event) error {
		if ev.Name == "routing" {
			r, err := ev.Route()
			if err != nil || r.Service == "" {
				t.Errorf("route event: %v", err)
			}
			routes++
		}
		if routes == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("watch: %v", err)
	}
}

func TestFlags(t *testing.T) {
	addr, _ := serve(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no default config file
	t.Setenv(client.EnvConfig, "")
	t.Setenv(client.EnvServer, "http://unused:1")
	t.Setenv(client.EnvToken, "")
	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte(opTok+"\n"), 0o600)
	var f client.Flags
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--server", addr, "--token-file", tok, "--client-config", filepath.Join(t.TempDir(), "none.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Client(); err == nil {
		t.Fatal("missing explicit --client-config accepted")
	}
	f.ConfigFile = ""
	c, err := f.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Snapshot(context.Background()); err != nil {
		t.Fatalf("flags did not win over the environment: %v", err)
	}
}
