package analysis_test

import (
	"context"
	"fmt"

	"github.com/firebreak/firebreak/internal/analysis"
	"github.com/firebreak/firebreak/internal/topology"
)

func ExampleAnalyze() {
	t, err := topology.Parse("example.yaml", []byte(`
sites: {pangyo: {}, gasan: {}, chuncheon: {role: witness}}
nodes:
  - {name: fb1, site: pangyo}
  - {name: fb2, site: gasan}
  - {name: fb3, site: chuncheon}
services:
  taxi:
    tier: 0
    endpoints:
      - {site: pangyo, address: 10.1.0.1, port: 443}
      - {site: gasan, address: 10.2.0.1, port: 443}
    dependsOn: [login]
  login:
    tier: 0
    endpoints: [{site: pangyo, address: 10.1.0.2, port: 443}]
`))
	if err != nil {
		panic(err)
	}
	res, err := analysis.Analyze(context.Background(), t, analysis.Options{})
	if err != nil {
		panic(err)
	}
	for _, f := range res.AtLeast(analysis.Critical) {
		fmt.Println(f.ID, "|", analysis.ChainString(f.Chain), "|", f.Fix)
	}
	// Output:
	// FB-SPOF-CHAIN/taxi/pangyo | taxi -> login(no endpoint outside pangyo) | make login survive the loss of pangyo: add an endpoint of login in gasan
	// FB-SPOF-SERVICE/login/pangyo | login(no endpoint outside pangyo) | add an endpoint of login in gasan
}
