package node

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/firebreak/firebreak/internal/store"
	"github.com/firebreak/firebreak/internal/topology"
)

// StoreOptions are the store settings that the topology file does not
// carry (yet): they come from serve's flags.
type StoreOptions struct {
	// DataDir is the embedded member's data directory (required when the
	// store is embedded).
	DataDir string
	// Token is the initial cluster token (default store.DefaultToken).
	Token string
	// ClusterState is "new" (default) or "existing" (joining a running
	// cluster after `etcdctl member add`).
	ClusterState string
	// ClientURL and PeerURL override the topology node's client and peer
	// URLs (defaults: the node's, else store.DefaultClientURL and
	// store.DefaultPeerURL).
	ClientURL, PeerURL string
	// PeerTLS and ClientTLS override the topology's store TLS files for the
	// embedded member's listeners (default: topology store.caFile/certFile/
	// keyFile for both, when set).
	PeerTLS, ClientTLS store.TLSFiles
	// TickMs and ElectionMs tune raft (defaults 100 and 1000).
	TickMs, ElectionMs uint
	// EtcdLogLevel is etcd's own log level (default "error").
	EtcdLogLevel string
	// AdoptDataDir accepts a data dir restored from a snapshot (see
	// store.MemberConfig.Adopt).
	AdoptDataDir bool
}

// ErrNodeUnknown is returned when the node to run cannot be determined.
var ErrNodeUnknown = errors.New("cannot tell which node this is")

// PickNode chooses the topology node this process runs: name when given,
// otherwise the only node, otherwise the node named like the host. With no
// nodes in the topology it returns nil and no error: a single anonymous
// node (named after the host) is run.
func PickNode(t *topology.Topology, name, hostname string) (*topology.Node, error) {
	if name != "" {
		if n := t.Node(name); n != nil {
			return n, nil
		}
		if len(t.Nodes) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: node %q is not in %s (nodes: %s)", ErrNodeUnknown, name, t.Source, nodeNames(t))
	}
	switch len(t.Nodes) {
	case 0:
		return nil, nil
	case 1:
		return t.Nodes[0], nil
	}
	if n := t.Node(hostname); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%w: %s lists %d nodes (%s) and none is named like this host %q; pass --node NAME", ErrNodeUnknown, t.Source, len(t.Nodes), nodeNames(t), hostname)
}

func nodeNames(t *topology.Topology) string {
	var s []string
	for _, n := range t.Nodes {
		s = append(s, n.Name)
	}
	return strings.Join(s, ", ")
}

// StoreFor decides how node self reaches the store:
//
//   - topology store.endpoints set: a client of that external cluster;
//   - self declares a peer URL (or opts.PeerURL is set): an embedded member
//     of the cluster formed by every node that declares a peer URL;
//   - other nodes declare peer URLs but self does not: a client of their
//     client URLs;
//   - no node declares a peer URL: a single embedded member.
//
// Exactly one of member and ext is meaningful: member is nil for a client.
func StoreFor(t *topology.Topology, self *topology.Node, name string, opts StoreOptions) (member *store.MemberConfig, ext store.ClientConfig, err error) {
	tlsTop := store.TLSFiles{CAFile: t.Store.CAFile, CertFile: t.Store.CertFile, KeyFile: t.Store.KeyFile}
	if len(t.Store.Endpoints) > 0 {
		return nil, store.ClientConfig{Endpoints: t.Store.Endpoints, TLS: tlsTop, Check: true}, nil
	}
	var peers []*topology.Node
	for _, n := range t.Nodes {
		if n.Peer != "" {
			peers = append(peers, n)
		}
	}
	selfPeer := opts.PeerURL
	if selfPeer == "" && self != nil {
		selfPeer = self.Peer
	}
	if selfPeer == "" && len(peers) > 0 {
		var eps []string
		for _, p := range peers {
			if p.Client == "" {
				return nil, ext, fmt.Errorf("node %s has a peer URL but no client URL; this node (no peer URL) needs it to reach the store", p.Name)
			}
			eps = append(eps, p.Client)
		}
		return nil, store.ClientConfig{Endpoints: eps, TLS: tlsTop, Check: true}, nil
	}
	if opts.DataDir == "" {
		return nil, ext, errors.New("embedded store: no data dir")
	}
	m := &store.MemberConfig{
		Name:         name,
		Dir:          opts.DataDir,
		PeerURL:      selfPeer,
		ClusterState: opts.ClusterState,
		Token:        opts.Token,
		TickMs:       opts.TickMs,
		ElectionMs:   opts.ElectionMs,
		LogLevel:     opts.EtcdLogLevel,
		Adopt:        opts.AdoptDataDir,
		ClientTLS:    opts.ClientTLS,
		PeerTLS:      opts.PeerTLS,
	}
	m.ClientURL = opts.ClientURL
	if m.ClientURL == "" && self != nil {
		m.ClientURL = self.Client
	}
	if !m.ClientTLS.Enabled() && tlsTop.Enabled() {
		m.ClientTLS = tlsTop
	}
	if !m.PeerTLS.Enabled() && tlsTop.Enabled() {
		m.PeerTLS = tlsTop
	}
	if len(peers) > 0 {
		var parts []string
		found := false
		for _, p := range peers {
			u := p.Peer
			if p.Name == name {
				u, found = selfPeer, true
			}
			parts = append(parts, p.Name+"="+u)
		}
		if !found {
			parts = append(parts, name+"="+selfPeer)
		}
		sort.Strings(parts)
		m.InitialCluster = strings.Join(parts, ",")
	}
	return m, ext, nil
}
