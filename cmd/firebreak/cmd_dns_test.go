package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/store/storetest"
)

const dnsTestTopology = `
sites:
  a: {subnets: ["10.1.0.0/16"]}
  b: {}
nodes:
  - {name: fb-a, site: a, dns: "192.0.2.1:53"}
dns: {zone: svc.example., ttl: 7s}
services:
  web:
    endpoints:
      - {site: a, address: 10.1.0.10, port: 80}
      - {site: b, address: 10.2.0.10, port: 80}
`

// TestDNSCommand serves a routing file, answers from it, and follows an
// edit of the file.
func TestDNSCommand(t *testing.T) {
	dir := t.TempDir()
	topo := filepath.Join(dir, "topo.yaml")
	rt := filepath.Join(dir, "routing.json")
	if err := os.WriteFile(topo, []byte(dnsTestTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(addr string) {
		t.Helper()
		js := `{"web": {"policy": "active-active", "revision": 7, "targets": [{"id": "w", "site": "a", "address": "` + addr + `", "port": 80}]}}`
		tmp := rt + ".tmp"
		if err := os.WriteFile(tmp, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, rt); err != nil {
			t.Fatal(err)
		}
	}
	write("10.1.0.10")
	l, err := net.ListenPacket("udp", "127.0.30.31:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	addr := "127.0.30.31:" + strconv.Itoa(port)

	errb := startCmd(t, "dns", "--topology", topo, "--routing", rt, "--listen", addr, "--workers", "1", "--reload", "20ms", "--log-level", "error")
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	answer := func() string {
		m := new(dns.Msg)
		m.SetQuestion("web.svc.example.", dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		if err != nil || len(r.Answer) != 1 {
			return ""
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	poll := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for answer() != want {
			if time.Now().After(deadline) {
				t.Fatalf("never answered %s; stderr: %s", want, errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	poll("10.1.0.10")
	write("10.2.0.10")
	poll("10.2.0.10")
}

func TestDNSCommandErrors(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"dns", "--topology", "x.yaml", "--routing", "r.json", "--endpoints", "127.0.0.1:1"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "exclusive") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

// TestDNSCommandStore follows routing from a real (embedded) etcd.
func TestDNSCommandStore(t *testing.T) {
	const host = "127.0.30.40"
	cli, member, _ := storetest.Start(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, store.RoutingPrefix+"web", `{"service":"web","policy":"active-active","targets":[{"id":"w","site":"b","address":"10.2.0.10","port":80}]}`); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	topo := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(topo, []byte(dnsTestTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := host + ":" + strconv.Itoa(dnsTestPort(t, host))
	errb := startCmd(t, "dns", "--topology", topo, "--endpoints", member.ClientURL(), "--listen", addr, "--workers", "1", "--log-level", "error")
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("web.svc.example.", dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "10.2.0.10" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never answered from the store: %v %v; stderr %s", r, err, errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dnsTestPort(t *testing.T, host string) int { return storetest.FreePort(t, host) }
