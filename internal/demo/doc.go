// Package demo runs firebreak's local multi-site demo: three sites on
// loopback addresses, one firebreak node per site forming one embedded etcd
// cluster, tiny HTTP backends playing two companies' services (one laid out
// like the 2022 messenger, one made N+1 on sites), and the DNS server. It
// can burn a site (its node, its etcd member and its backends die at once)
// and measures how long detection and re-routing took.
//
// Every node runs internal/server's assembly, the same as `firebreak serve`.
//
//	d, err := demo.Start(ctx, demo.Config{})
//	if err != nil { ... }
//	defer d.Close()              // stops everything, removes the data dir
//	d.WriteWelcome(os.Stdout)    // URLs, dig commands, operator token
//	res, err := d.Burn(ctx, "pangyo", 30*time.Second)
//	res.WriteSummary(os.Stdout)  // moved / dark, leader, measured times
//	err = d.Restore(ctx, "pangyo")
package demo
