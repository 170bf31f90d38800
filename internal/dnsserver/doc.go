// Package dnsserver is firebreak's authoritative DNS server: clients and load
// balancers follow routing decisions through it.
//
// The server is authoritative for the topology's zone (Topology.DNS.Zone) on
// UDP and TCP at one port. It answers:
//
//   - at the apex: SOA, NS (one name per firebreak node, <node>.ns.<zone>,
//     with glue) and TXT (routing revision and staleness);
//   - at each service's and datastore's name: A and AAAA of the routed
//     targets, SRV (priority 0, the target's weight and port, target names
//     <site>-<n>.<name> with address glue), TXT (revision, policy and
//     staleness);
//   - at each alias: a CNAME to the service's name, followed in-zone;
//   - at each endpoint host name (<site>-<n>.<name>): its address.
//
// Negative answers follow RFC 2308 (NXDOMAIN for names that do not exist,
// NODATA for names that exist without the type, both with the SOA in the
// authority section), names outside the zone are REFUSED, malformed queries
// get FORMERR and unsupported opcodes NOTIMP. ANY is answered with the RFC
// 8482 HINFO record. EDNS(0) is supported (UDP payload size 1232, BADVERS for
// versions other than 0, client subnet for the nearest policy); answers that
// do not fit a UDP response are truncated (TC) so that clients retry on TCP.
//
// Routing policies: active-active and weighted return every routed target,
// rotated between answers in proportion to the targets' weights; failover
// returns the targets of the first site in the route; nearest maps the
// client's address (or its EDNS client subnet) to a site through the sites'
// subnets and returns that site's targets.
//
// # Hot path
//
// Every answer is compiled ahead of time into a packed template keyed by the
// lowercased query name and type. A query is parsed by hand from the
// received bytes, the template is copied into a per-socket buffer, and the
// ID, flags and question (preserving the client's 0x20 case) are patched in:
// no lock, no allocation, no store access. Tables are rebuilt off the hot
// path whenever routing changes and swapped atomically. UDP is read and
// written in batches (recvmmsg/sendmmsg) by one reader per worker on its own
// SO_REUSEPORT socket.
//
// # Use
//
//	srv, err := dnsserver.New(dnsserver.Config{
//		Listen:   "127.0.0.1:5353",
//		Topology: topo,
//		Source:   dnsserver.NewStaticSource(table),
//	})
//	if err != nil { ... }
//	defer srv.Close()
//	err = srv.Serve(ctx) // blocks until ctx is done or Close is called
package dnsserver
