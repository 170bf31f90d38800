package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// NodeInfo is the value a live node keeps at NodeKey(name), under its lease:
// the key vanishes when the node dies.
type NodeInfo struct {
	Name string `json:"name"`
	Site string `json:"site"`
	// API, DNS, Peer and Client are the node's addresses, as in the topology.
	API    string `json:"api,omitempty"`
	DNS    string `json:"dns,omitempty"`
	Peer   string `json:"peer,omitempty"`
	Client string `json:"client,omitempty"`
	// Version is the firebreak version the node runs.
	Version string `json:"version,omitempty"`
	// Started is when the node process started.
	Started time.Time `json:"started"`
	// Lease is the liveness lease (hex in etcdctl: %x).
	Lease int64 `json:"lease"`
}

// MemberStatus is one etcd member as seen by Gather.
type MemberStatus struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Learner    bool     `json:"learner,omitempty"`
	// Reachable is true when the member answered a status request.
	Reachable bool `json:"reachable"`
	// RaftLeader is true for the member that is raft leader.
	RaftLeader bool   `json:"raftLeader,omitempty"`
	DBSize     int64  `json:"dbSize,omitempty"`
	RaftTerm   uint64 `json:"raftTerm,omitempty"`
	Version    string `json:"version,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Status is the control plane's state: who is alive, who leads, how the
// store is, which topology is current.
type Status struct {
	// Nodes are the live nodes (those whose lease is alive), by name.
	Nodes []NodeInfo `json:"nodes"`
	// Leader is the name of the node that holds the leader election, or "".
	Leader string `json:"leader"`
	// TopologyRev is the current topology revision (0: none).
	TopologyRev int64 `json:"topologyRev"`
	// Members are the etcd members (empty for an external store that
	// refuses the member list).
	Members []MemberStatus `json:"members"`
	// Quorum is true when a linearizable read succeeded.
	Quorum bool `json:"quorum"`
	// Revision is the store revision of the read.
	Revision int64 `json:"revision"`
	// Errors are problems met while gathering; the rest is still filled.
	Errors []string `json:"errors,omitempty"`
}

// Gather collects Status. Each member is asked for its status with
// perMember as timeout. It fails only when the store cannot be read at all.
func Gather(ctx context.Context, cli *clientv3.Client, perMember time.Duration) (*Status, error) {
	st := &Status{}
	nodes, rev, err := List[NodeInfo](ctx, cli, NodesPrefix)
	if nodes == nil {
		return nil, fmt.Errorf("gather status: %w", err)
	}
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
	}
	st.Quorum = true
	st.Revision = rev
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, n)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })

	if leader, err := Leader(ctx, cli); err == nil {
		st.Leader = leader
	} else if !errors.Is(err, ErrNotFound) {
		st.Errors = append(st.Errors, err.Error())
	}
	if _, trev, _, err := LoadTopology(ctx, cli); err == nil {
		st.TopologyRev = trev
	} else if !errors.Is(err, ErrNoTopology) {
		st.Errors = append(st.Errors, err.Error())
	}

	ml, err := cli.MemberList(ctx)
	if err != nil {
		st.Errors = append(st.Errors, fmt.Sprintf("member list: %v", err))
		return st, nil
	}
	for _, m := range ml.Members {
		ms := MemberStatus{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner}
		for _, u := range m.ClientURLs {
			sctx, cancel := context.WithTimeout(ctx, perMember)
			sr, err := cli.Status(sctx, u)
			cancel()
			if err != nil {
				ms.Error = err.Error()
				continue
			}
			ms.Reachable, ms.Error = true, ""
			ms.RaftLeader = sr.Leader == m.ID
			ms.DBSize = sr.DbSize
			ms.RaftTerm = sr.RaftTerm
			ms.Version = sr.Version
			break
		}
		st.Members = append(st.Members, ms)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	return st, nil
}

// Leader returns the name of the node holding the leader election, or
// ErrNotFound when no node campaigns.
func Leader(ctx context.Context, kv clientv3.KV) (string, error) {
	resp, err := kv.Get(ctx, ElectionKey(RoleLeader)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("leader: %w", ErrNotFound)
	}
	return string(resp.Kvs[0].Value), nil
}
