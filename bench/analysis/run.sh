#!/usr/bin/env bash
# bench/analysis/run.sh: the analysis scaling table of docs/benchmarks.md.
#
# For each size it generates a synthetic topology in memory (internal/topogen:
# 10 endpoints per service, 5 dependencies on average, 8 layers deep) and
# runs every single-site, site-pair and compromised-site scenario
# (BenchmarkAnalyzeScale in internal/analysis), printing wall time per
# analysis, CPU time per analysis, live heap after it and the peak RSS of the
# whole benchmark process (generation included). It then runs the CLI end to
# end on a 10k-service file written by `firebreak gen-topology`.
#
# Usage: bench/analysis/run.sh            (BENCHTIME=5x by default; 100k uses 1x)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/out/analysis
mkdir -p "$out" bench/data
go test -c -o "$out/analysis.test" ./internal/analysis
go build -o "$out/firebreak" ./cmd/firebreak

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| services | sites | scenarios | wall per analysis | CPU per analysis | live heap after | peak RSS (process) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for c in "1000 20" "10000 20" "100000 20" "10000 5" "10000 10"; do
	set -- $c
	bt=${BENCHTIME:-5x}
	[ "$1" -ge 100000 ] && bt=1x
	name="services=$1,sites=$2"
	(cd internal/analysis && /usr/bin/time -f "%M" -o "../../$out/rss.txt" "../../$out/analysis.test" \
		-test.run '^$' -test.bench "^BenchmarkAnalyzeScale\$/^${name}\$" -test.benchtime "$bt") > "$out/bench.txt"
	line=$(grep "^BenchmarkAnalyzeScale/" "$out/bench.txt")
	val() { echo "$line" | awk -v u="$1" '{for (i=2;i<=NF;i++) if ($i==u) print $(i-1)}'; }
	ns=$(val ns/op); cpu=$(val cpu-ms/op); live=$(val MiB-live); scen=$(val scenarios)
	rss=$(tail -1 "$out/rss.txt")
	awk -v s="$1" -v m="$2" -v sc="$scen" -v ns="$ns" -v cpu="$cpu" -v live="$live" -v rss="$rss" \
		'BEGIN { printf "| %d | %d | %d | %.0f ms | %.0f ms | %.0f MiB | %.0f MiB |\n", s, m, sc, ns/1e6, cpu, live, rss/1024 }'
done

echo
f=bench/data/analysis-10k-20.yaml
[ -f "$f" ] || "$out/firebreak" gen-topology --services 10000 --sites 20 -o "$f"
echo "CLI end to end: firebreak analyze --timing $f > /dev/null"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" "$out/firebreak" analyze --timing "$f" > /dev/null
