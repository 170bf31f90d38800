#!/usr/bin/env bash
# Runs the runbook benchmarks recorded in docs/benchmarks.md; output goes to
# bench/out/. Takes about 4 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/out
go build -o bench/out/runbook-bench ./bench/runbook
for args in "-mode run -global 1000 -per-site 200" "-mode run -global 2000 -per-site 400" "-mode kill -global 1000 -per-site 200"; do
  name=$(echo "$args" | tr -d ' -' )
  echo "== runbook-bench $args (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee "bench/out/runbook-$name.txt"
  /usr/bin/time -v bench/out/runbook-bench $args 2>&1 | grep -v -E '^\s+(Page|Vol|Invol|Swaps|File|Socket|Signals|Average|Minor|Major|Exit|Percent|Command)' | tee -a "bench/out/runbook-$name.txt"
done
