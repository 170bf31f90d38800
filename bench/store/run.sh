#!/bin/sh
# Control-plane benchmark: leader failover over 20 kills with a 3 s lease TTL,
# and the write rate of observation transitions under a lease, on a 3-member
# embedded etcd cluster on loopback. Output: bench/out/store.txt.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p bench/out
go build -o bench/out/bench-store ./bench/store
./bench/out/bench-store -kills "${KILLS:-20}" -ttl "${TTL:-3s}" -writes "${WRITES:-20000}" -writers "${WRITERS:-32}" | tee bench/out/store.txt
