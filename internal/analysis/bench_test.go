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
// scenarios per op, the CPU time per op (user+system, all threads; wall
// time is ns/op), and the live heap after the analysis (topology plus
// result) as MiB-live.
func benchAnalyze(b *testing.B, services, sites int) {
	t := topogen.Generate(topogen.Config{Services: services, Sites: sites})
	ctx := context.Background()
	var res *Result
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		var err error
		res, err = Analyze(ctx, t, Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
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

// BenchmarkAnalyzeScale shows how time grows with services (1k, 10k, 100k
// at 20 sites) and with sites (5, 10, 20 at 10k services: scenarios grow as
// sites²/2). bench/analysis/run.sh runs each case and records peak memory.
func BenchmarkAnalyzeScale(b *testing.B) {
	for _, c := range []struct{ services, sites int }{
		{1000, 20}, {10000, 20}, {100000, 20}, {10000, 5}, {10000, 10},
	} {
		b.Run(fmt.Sprintf("services=%d,sites=%d", c.services, c.sites), func(b *testing.B) {
			benchAnalyze(b, c.services, c.sites)
		})
	}
}
