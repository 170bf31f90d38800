package analysis

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/firebreak/firebreak/internal/topogen"
)

// benchAnalyze generates a topology in memory (never committed) and times
// Analyze over every single-site and site-pair scenario. It reports the
// scenarios per op, and the live heap after the analysis (topology plus
// result) as MiB-live.
func benchAnalyze(b *testing.B, services, sites int) {
	t := topogen.Generate(topogen.Config{Services: services, Sites: sites})
	ctx := context.Background()
	var res *Result
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		res, err = Analyze(ctx, t, Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(len(res.Scenarios)), "scenarios")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live")
	b.ReportMetric(float64(len(res.Findings)), "findings")
	runtime.KeepAlive(res)
	runtime.KeepAlive(t)
}

// BenchmarkAnalyze10k is the target: 10,000 services, 100,000
// endpoints, 20 sites, 210 site and site-pair scenarios, under 2 s.
func BenchmarkAnalyze10k(b *testing.B) { benchAnalyze(b, 10000, 20) }

func BenchmarkAnalyze1k(b *testing.B) { benchAnalyze(b, 1000, 20) }

func BenchmarkAnalyze100k(b *testing.B) { benchAnalyze(b, 100000, 20) }

// BenchmarkAnalyzeSites shows how time grows with the number of sites
// (scenarios grow as sites²/2) at 10,000 services.
func BenchmarkAnalyzeSites(b *testing.B) {
	for _, sites := range []int{5, 10, 20} {
		b.Run(fmt.Sprintf("sites=%d", sites), func(b *testing.B) { benchAnalyze(b, 10000, sites) })
	}
}
