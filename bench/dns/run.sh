#!/usr/bin/env bash
# bench/dns/run.sh: firebreak's DNS server against Knot DNS and CoreDNS (file
# plugin), same machine, same run, same zone (1,000 services), measured with
# dnsperf at saturation and at 50 % of each server's saturation rate.
#
# Usage: bench/dns/run.sh [SECONDS]          (default 15 s per measurement)
# Env:   WORK=/tmp/fbdns-bench  SERVER_CPU=1  CLIENT_CPU=0  PORT_BASE=15350
#        COREDNS_VERSION=v1.15.0  SERVERS="firebreak knot coredns"  ROUNDS=1
#        (ROUNDS>1 repeats the whole sequence, so that each server is measured
#        at several moments of a shared machine's background load)
#
# Everything is built and written OUTSIDE the repository, under $WORK:
# firebreak is built from this tree, Knot and dnsperf come from Debian
# packages (installed here when missing), CoreDNS is built with
# `go install github.com/coredns/coredns@$COREDNS_VERSION` into $WORK.
# The server is pinned to $SERVER_CPU and dnsperf to $CLIENT_CPU with
# taskset; server CPU time is read from /proc/PID/stat (utime+stime) before
# and after each run. Results: $WORK/results.md (markdown table).
set -euo pipefail

DUR=${1:-15}
WORK=${WORK:-/tmp/fbdns-bench}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT_BASE=${PORT_BASE:-15350}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
SERVERS=${SERVERS:-"firebreak knot coredns"}
ROUNDS=${ROUNDS:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NSERV=1000
ZONE=bench.example.
mkdir -p "$WORK"
cd "$WORK"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# --- tools ------------------------------------------------------------------
need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v dig >/dev/null || need+=(dnsutils)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log "building firebreak"
(cd "$ROOT" && go build -o "$WORK/firebreak" ./cmd/firebreak)

if [[ " $SERVERS " == *" coredns "* ]] && [ ! -x "$WORK/bin/coredns" ]; then
  log "building CoreDNS $COREDNS_VERSION (module proxy) into $WORK/bin"
  mkdir -p "$WORK/coredns-build"
  if ! (cd "$WORK/coredns-build" && GOFLAGS=-mod=mod GOBIN="$WORK/bin" go install "github.com/coredns/coredns@$COREDNS_VERSION"); then
    log "CoreDNS could not be built; skipping it"
    SERVERS=${SERVERS//coredns/}
  fi
fi

# --- the zone: 1,000 services, two endpoints each, one per site ------------
log "generating the zone"
awk -v n=$NSERV -v zone=$ZONE -v work="$WORK" 'BEGIN {
  topo = work "/topology.yaml"; rt = work "/routing.json"; zf = work "/zone.db"; q = work "/queries.txt"
  print "sites: {a: {subnets: [\"10.0.0.0/16\"]}, b: {subnets: [\"10.1.0.0/16\"]}}" > topo
  print "nodes:\n  - {name: fb-a, site: a, dns: \"127.0.0.1:53\"}" > topo
  print "dns: {zone: " zone ", ttl: 30s}\nservices:" > topo
  printf "{\"revision\": 1, \"routes\": {" > rt
  print "$ORIGIN " zone "\n$TTL 30" > zf
  print "@ SOA fb-a.ns hostmaster 1 60 10 3600 30\n@ NS fb-a.ns\nfb-a.ns A 127.0.0.1" > zf
  for (i = 1; i <= n; i++) {
    name = sprintf("s%04d", i); a1 = sprintf("10.0.%d.%d", int(i/250), i%250 + 1); a2 = sprintf("10.1.%d.%d", int(i/250), i%250 + 1)
    print "  " name ": {endpoints: [{site: a, address: " a1 ", port: 80}, {site: b, address: " a2 ", port: 80}]}" > topo
    printf "%s\"%s\": {\"policy\": \"active-active\", \"revision\": 1, \"targets\": [{\"id\": \"%s/a\", \"site\": \"a\", \"address\": \"%s\", \"port\": 80, \"weight\": 1}, {\"id\": \"%s/b\", \"site\": \"b\", \"address\": \"%s\", \"port\": 80, \"weight\": 1}]}", (i > 1 ? ", " : ""), name, name, a1, name, a2 > rt
    print name " A " a1 "\n" name " A " a2 > zf
  }
  print "}}" > rt
  # queries: every service A (90 %) and names that do not exist (10 %), shuffled by a fixed LCG
  m = 0
  for (i = 1; i <= n; i++) qs[m++] = sprintf("s%04d.%s A", i, zone)
  for (i = 1; i <= n/9; i++) qs[m++] = sprintf("nx%04d.%s A", i, zone)
  seed = 12345
  for (i = m - 1; i > 0; i--) { seed = (seed * 1103515245 + 12345) % 2147483648; j = seed % (i + 1); t = qs[i]; qs[i] = qs[j]; qs[j] = t }
  for (i = 0; i < m; i++) print qs[i] > q
}'

# --- servers ----------------------------------------------------------------
PID=
METRICS=
start_firebreak() {
  PORT=$((PORT_BASE + 1)); METRICS="http://127.0.0.1:$((PORT_BASE + 11))/metrics"
  taskset -c "$SERVER_CPU" "$WORK/firebreak" dns --topology "$WORK/topology.yaml" --routing "$WORK/routing.json" \
    --listen "127.0.0.1:$PORT" --workers 1 --metrics "127.0.0.1:$((PORT_BASE + 11))" --log-level warn \
    >"$WORK/firebreak.log" 2>&1 &
  PID=$!
}
start_knot() {
  PORT=$((PORT_BASE + 2)); METRICS=
  mkdir -p "$WORK/knot"
  cat >"$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$WORK/knot/db"
log:
  - target: stderr
    any: warning
zone:
  - domain: $ZONE
    file: "$WORK/zone.db"
    journal-content: none
    zonefile-sync: -1
EOF
  taskset -c "$SERVER_CPU" knotd -c "$WORK/knot/knot.conf" >"$WORK/knot.log" 2>&1 &
  PID=$!
}
start_coredns() {
  PORT=$((PORT_BASE + 3)); METRICS="http://127.0.0.1:$((PORT_BASE + 13))/metrics"
  cat >"$WORK/Corefile" <<EOF
$ZONE:$PORT {
    bind 127.0.0.1
    file $WORK/zone.db
    prometheus 127.0.0.1:$((PORT_BASE + 13))
}
EOF
  taskset -c "$SERVER_CPU" "$WORK/bin/coredns" -conf "$WORK/Corefile" >"$WORK/coredns.log" 2>&1 &
  PID=$!
}

wait_ready() {
  for _ in $(seq 100); do
    if dig @127.0.0.1 -p "$PORT" +short +tries=1 +time=1 s0001.$ZONE A 2>/dev/null | grep -q '^10\.'; then return 0; fi
    sleep 0.1
  done
  log "server on $PORT did not answer"; return 1
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mallocs() { [ -n "$METRICS" ] && curl -s "$METRICS" | awk '/^go_memstats_mallocs_total/ {printf "%.0f", $2}' || echo ""; }

CLK=$(getconf CLK_TCK)
echo "| server | load | QPS | avg latency ms | p50 ms | p99 ms | lost | server CPU µs/query | dnsperf CPU µs/query | sum | allocs/query |" >"$WORK/results.md"
echo "|---|---|---|---|---|---|---|---|---|---|---|" >>"$WORK/results.md"

# measure NAME LOADNAME RATE: one dnsperf run; prints the QPS.
measure() {
  local name=$1 load=$2 rate=$3 out="$WORK/dnsperf-$1-$2.txt"
  local t0 t1 m0 m1 args=(-s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -l "$DUR" -c 4 -q 500 -T 1 -b 4096)
  [ "$rate" != 0 ] && args+=(-Q "$rate" -v)
  m0=$(mallocs); t0=$(ticks "$PID")
  # On loopback the kernel charges delivering a datagram (and waking its
  # receiver) to the sender, so the client's CPU is measured too.
  /usr/bin/time -f "%U %S" -o "$out.time" taskset -c "$CLIENT_CPU" dnsperf "${args[@]}" >"$out" 2>&1
  t1=$(ticks "$PID"); m1=$(mallocs)
  local done qps avg lost p50=- p99=- cpu allocs=n/a
  done=$(awk '/Queries completed:/ {print $3}' "$out")
  lost=$(awk '/Queries lost:/ {print $3}' "$out")
  qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$out")
  avg=$(awk '/Average Latency/ {printf "%.3f", $4 * 1000}' "$out")
  if [ "$rate" != 0 ]; then
    # dnsperf -v prints one line per answer ending with its latency in seconds
    read -r p50 p99 < <(awk '/^> / {print $NF * 1000}' "$out" | sort -n | awk '{v[NR] = $1} END {if (NR) printf "%.3f %.3f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1]; else print "- -"}')
  fi
  cpu=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" -v n="$done" 'BEGIN {printf "%.1f", (b - a) * 1e6 / c / n}')
  local ccpu sum
  ccpu=$(awk -v n="$done" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$out.time")
  sum=$(awk -v a="$cpu" -v b="$ccpu" 'BEGIN {printf "%.1f", a + b}')
  if [ -n "$m0" ] && [ -n "$m1" ]; then allocs=$(awk -v a="$m0" -v b="$m1" -v n="$done" 'BEGIN {printf "%.2f", (b - a) / n}'); fi
  echo "| $name | $load | $qps | $avg | $p50 | $p99 | $lost | $cpu | $ccpu | $sum | $allocs |" >>"$WORK/results.md"
  log "$name $load: qps=$qps avg=${avg}ms p50=$p50 p99=$p99 lost=$lost cpu=${cpu}µs/q dnsperf=${ccpu}µs/q allocs=$allocs"
  echo "$qps"
}

for round in $(seq "$ROUNDS"); do
for s in $SERVERS; do
  log "round $round: starting $s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "start_$s"
  trap 'kill $PID 2>/dev/null || true' EXIT
  wait_ready
  sleep 1
  sat=$(measure "$s" saturation 0)
  measure "$s" "50% ($((sat / 2)) qps)" $((sat / 2)) >/dev/null
  kill "$PID"; wait "$PID" 2>/dev/null || true
  trap - EXIT
done
done
{
  echo
  echo "date: $(date -u +%FT%TZ); load average at the end $(cut -d' ' -f1-3 /proc/loadavg); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "server pinned with taskset -c $SERVER_CPU, dnsperf with taskset -c $CLIENT_CPU; $DUR s per run; dnsperf -c 4 -q 500 -T 1 -b 4096"
  echo "dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'), knotd $(knotd -V 2>&1 | awk '{print $NF}'), coredns $COREDNS_VERSION"
} >>"$WORK/results.md"
cat "$WORK/results.md"
