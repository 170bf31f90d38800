#!/usr/bin/env bash
# make bench: every long benchmark, one after the other. Each prints the
# table recorded in docs/benchmarks.md; outputs go to bench/out/ (ignored by
# git). Run one alone with BENCH=dns (or analysis, store, failover, runbook,
# datafailover, go). Expect about an hour for all of them on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
mkdir -p bench/out
want=${BENCH:-all}
run() {
	local name=$1; shift
	[ "$want" = all ] || [ "$want" = "$name" ] || return 0
	echo
	echo "===== bench $name: $*"
	"$@" 2>&1 | tee "bench/out/$name.log"
}
run go        go test -run '^$' -bench . -benchmem -benchtime 1x ./internal/...
run analysis  bench/analysis/run.sh
run store     bench/store/run.sh
run failover  bench/failover/run.sh
run dns       bench/dns/run.sh
run runbook   bench/runbook/run.sh
run datafailover go run ./bench/datafailover -trials 10 -modes sync,async
