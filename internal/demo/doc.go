// Package demo runs firebreak's local multi-site demo: three sites on
// loopback addresses, one firebreak node per site forming one embedded etcd
// cluster, tiny HTTP backends playing two companies' services (one laid out
// like the 2022 messenger, one made N+1 on sites), and the DNS server. It
// can burn a site (its node, its etcd member and its backends die at once)
// and measures how long detection and re-routing took.
package demo
