package main

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/firebreak/firebreak/internal/certs"
	"github.com/firebreak/firebreak/internal/topology"
)

func newCertsCmd(c *cli) *cobra.Command {
	var (
		dir      string
		config   string
		nodes    []string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "certs [-c TOPOLOGY] [--node NAME=HOST,HOST...]... --dir DIR",
		Short: "Make a local CA and node certificates for the store's TLS",
		Long: `certs creates DIR/ca.pem and DIR/ca-key.pem (or reuses them when present)
and, for every node, DIR/NODE.pem and DIR/NODE-key.pem: a certificate valid
for both server and client auth, for the node's addresses plus localhost and
127.0.0.1. With -c, the nodes and their addresses come from the topology
(api, dns, peer and client URLs); --node adds or names nodes by hand. Keys
are written 0600 in a 0700 directory.

Use them with serve's --peer-*/--client-* flags or the topology's
store.caFile/certFile/keyFile; see docs/operations.md. For production, a
company PKI is better: firebreak only needs PEM files.`,
		Example: `  firebreak certs -c prod.yaml --dir /etc/firebreak/certs
  firebreak certs --dir certs --node fb-a=10.0.1.5,fb-a.example.com --node ops`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want := map[string][]string{}
			var order []string
			add := func(name string, hosts ...string) {
				if _, ok := want[name]; !ok {
					order = append(order, name)
				}
				want[name] = append(want[name], hosts...)
			}
			if config != "" {
				t, err := topology.Load(config)
				if err != nil {
					return printTopologyErrors(c, config, err)
				}
				for _, n := range t.Nodes {
					add(n.Name, hostsOf(n.API, n.DNS, n.Peer, n.Client)...)
				}
			}
			for _, spec := range nodes {
				name, hosts, _ := strings.Cut(spec, "=")
				if name == "" {
					return &exitError{code: 2, err: fmt.Errorf("--node %q: expected NAME or NAME=HOST,HOST", spec)}
				}
				var hs []string
				if hosts != "" {
					hs = strings.Split(hosts, ",")
				}
				add(name, hs...)
			}
			if len(order) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("no nodes: give -c TOPOLOGY or --node NAME")}
			}
			ca, created, err := certs.LoadOrCreateCA(dir, "firebreak CA", validity)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if created {
				fmt.Fprintf(c.stdout, "created CA %s\n", filepath.Join(dir, certs.CAFile))
			} else {
				fmt.Fprintf(c.stdout, "using CA %s\n", filepath.Join(dir, certs.CAFile))
			}
			for _, name := range order {
				hosts := append(want[name], "localhost", "127.0.0.1", "::1")
				cp, _, err := ca.Issue(dir, name, hosts, validity)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				fmt.Fprintf(c.stdout, "issued %s for %s\n", cp, strings.Join(dedup(hosts), ", "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "certs", "output directory (created 0700)")
	fl.StringVarP(&config, "config", "c", "", "topology whose nodes get certificates")
	fl.StringArrayVar(&nodes, "node", nil, "a node NAME or NAME=HOST,HOST (repeatable)")
	fl.DurationVar(&validity, "validity", certs.DefaultValidity, "how long certificates are valid")
	return cmd
}

// hostsOf extracts hosts from host:port strings and URLs.
func hostsOf(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		if a == "" {
			continue
		}
		if u, err := url.Parse(a); err == nil && u.Host != "" {
			a = u.Host
		}
		if h, _, err := net.SplitHostPort(a); err == nil {
			a = h
		}
		if a != "" && a != "0.0.0.0" && a != "::" {
			out = append(out, a)
		}
	}
	return out
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
