// Package node runs one firebreak node's control-plane lifecycle: it starts
// (or joins) the store, publishes the node's liveness under a lease,
// campaigns for leadership, keeps the current topology (watched from the
// store, swapped atomically), tracks whether the store still has quorum
// (static stability), and runs the node's components.
//
// # Components
//
// Every other part of firebreak (prober, decider, DNS server, runner, API)
// plugs in as a Component and talks to the node only through *Node:
//
//	type prober struct{}
//
//	func (prober) Name() string { return "probe" }
//
//	func (p prober) Run(ctx context.Context, n *node.Node) error {
//		// Write observations under the node's lease: they vanish if it dies.
//		return n.WithLease(ctx, func(ctx context.Context, lease clientv3.LeaseID) error {
//			_, err := n.Client().Put(ctx, store.ObservationKey(n.Name(), id), v, clientv3.WithLease(lease))
//			...
//		})
//	}
//
//	type decider struct{}
//
//	func (d decider) Run(ctx context.Context, n *node.Node) error {
//		// Leader-only work: fn's ctx ends when leadership is lost or the
//		// store loses quorum.
//		return n.WhileLeader(ctx, func(ctx context.Context) error {
//			guard, ok := n.LeaderGuard()  // fence writes on leadership
//			...
//		})
//	}
//
// # Guarantees
//
//   - Liveness: NodeKey(name) exists while the node's lease lives; a killed
//     node's key (and every key written under Lease) vanishes within the
//     lease TTL (default 3 s).
//   - Leadership: at most one node sees IsLeader true at a time as far as
//     the store can tell; a write made with LeaderGuard's comparisons can
//     only succeed while the writer still holds the election key, so a
//     deposed leader's late writes fail.
//   - Static stability: when the store loses quorum (a partitioned minority,
//     or an external cluster down), Stale reports true with the time of the
//     last successful read, IsLeader turns false at once, WhileLeader's ctx
//     is cancelled, and Topology keeps returning the last good topology.
//     No automatic decision is made without quorum.
//   - Topology: Topology returns the current parsed topology; a new one
//     published with store.PublishTopology (firebreak apply) is picked up
//     by watch, without restart; TopologyChanged signals it.
//
// Close (or Shutdown) resigns leadership, deletes the liveness key, revokes
// the lease, optionally removes the member from the cluster, and stops the
// embedded member; it is idempotent.
package node
