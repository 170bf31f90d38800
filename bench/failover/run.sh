#!/bin/sh
# Detection benchmark and probe-scheduler load (issue #5); results are
# recorded by hand in docs/benchmarks.md ("Detection and failover").
set -eu
cd "$(dirname "$0")/../.."
mkdir -p bench/out
go build -o bench/out/failover-bench ./bench/failover
bench/out/failover-bench detect -trials "${TRIALS:-20}" -partition-trials "${PTRIALS:-10}" | tee bench/out/failover-detect.txt
bench/out/failover-bench schedule -n 100000 -check noop -d 20s | tee bench/out/failover-schedule.txt
bench/out/failover-bench schedule -n 100000 -check tcp -workers 4096 -d 20s | tee -a bench/out/failover-schedule.txt
