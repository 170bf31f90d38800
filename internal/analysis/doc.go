// Package analysis computes what the loss of each site, each pair of sites,
// each declared rack and each compromised site does to a topology: which
// services stop or degrade and the dependency chain that explains each,
// which datastores fail over or are lost, whether firebreak's own control
// plane keeps a majority, and which customer classes are hit. From those
// scenarios it derives findings with stable IDs, severities and concrete
// fixes (docs/analysis.md lists every rule).
//
// Usage:
//
//	t, err := topology.Load("examples/kakao-2022.yaml")
//	if err != nil { ... }
//	res, err := analysis.Analyze(ctx, t, analysis.Options{})
//	if err != nil { ... }
//	for _, f := range res.AtLeast(analysis.High) {
//		fmt.Println(f.Severity, f.ID, analysis.ChainString(f.Chain), f.Fix)
//	}
//	err = analysis.Write(os.Stdout, analysis.FormatJSON, res, t, analysis.WriteOptions{})
//
// The Result is a plain exported model with JSON tags (schema
// SchemaVersion), meant to be shared read-only by the API, the UI and the
// DR-plan report.
//
// Analyze compiles the topology into flat arrays in topological order, so
// that one scenario is a single O(services + dependencies) pass without
// allocation, and evaluates scenarios on a pool of GOMAXPROCS workers.
package analysis
