// Package probe is firebreak's observer: it checks the service endpoints
// assigned to this node and writes only the transitions of its opinions to
// the store, under the node's lease.
//
// Checks (Checkers.New) cover http/https (status, body match, TLS verify
// on or off), tcp connect, dns (query and expected answer), gRPC health
// (grpc.health.v1) and exec. Assign decides, from the topology and the live
// node set alone, which nodes observe which endpoint: its own site plus two
// other sites, chosen by rendezvous hashing so a node's death moves only its
// share. Scheduler runs the checks of many endpoints on a fixed worker pool
// from a min-heap of due times, spreading start times over the interval,
// with rise/fall hysteresis per endpoint. Prober ties these to etcd.
//
// A typical node runs one Prober per lease generation:
//
//	p, err := probe.NewProber(probe.Config{Node: "fb-pangyo", Topology: topo, Client: cli, Lease: lease})
//	if err != nil {
//		return err
//	}
//	return p.Run(ctx) // until ctx is done or the lease is lost
package probe
