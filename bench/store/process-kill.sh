#!/bin/sh
# End-to-end check with real processes: three `firebreak serve` nodes on
# 127.0.10.11-13, SIGKILL the leader's process, time until `firebreak status`
# on a survivor names a new leader, restart the killed node, repeat.
# Usage: bench/store/process-kill.sh [KILLS]   (default 5; output on stdout)
set -eu
cd "$(dirname "$0")/../.."
KILLS=${1:-5}
TTL=${TTL:-3s}
mkdir -p bench/out
go build -o bench/out/firebreak ./cmd/firebreak
FB=bench/out/firebreak
W=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM

cat > "$W/t.yaml" <<YAML
sites:
  s1: {role: datacenter}
  s2: {role: datacenter}
  s3: {role: witness}
nodes:
  - {name: n1, site: s1, peer: "http://127.0.10.11:23800", client: "http://127.0.10.11:23790"}
  - {name: n2, site: s2, peer: "http://127.0.10.12:23800", client: "http://127.0.10.12:23790"}
  - {name: n3, site: s3, peer: "http://127.0.10.13:23800", client: "http://127.0.10.13:23790"}
YAML

start() { # start NODE: runs serve in the background, records its pid in $W/NODE.pid
	"$FB" serve -c "$W/t.yaml" --node "$1" --data-dir "$W/$1" --lease-ttl "$TTL" --log-level warn >>"$W/$1.log" 2>&1 &
	echo $! >"$W/$1.pid"
	pids="$pids $!"
}
ep() { echo "http://127.0.10.1${1#n}:23790"; }
leader_via() { # leader as seen through NODE's member, or empty
	"$FB" status --endpoints "$(ep "$1")" --format json --timeout 1s 2>/dev/null |
		sed -n 's/^  "leader": "\(.*\)",$/\1/p'
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for n in n1 n2 n3; do start $n; done
times=""
for k in $(seq 1 "$KILLS"); do
	l=""
	while [ -z "$l" ]; do l=$(leader_via n1 || true); [ -n "$l" ] || l=$(leader_via n2 || true); sleep 0.2; done
	sleep 5 # steady state (see docs/benchmarks.md)
	l=$(leader_via n1 || leader_via n2)
	case $l in n1) s=n2 ;; *) s=n1 ;; esac
	t0=$(now_ms)
	kill -9 "$(cat "$W/$l.pid")"
	while :; do
		nl=$(leader_via "$s" || true)
		if [ -n "$nl" ] && [ "$nl" != "$l" ]; then break; fi
		sleep 0.02
	done
	d=$(( $(now_ms) - t0 ))
	times="$times $d"
	echo "kill $k: SIGKILL $l, status on $s names $nl after ${d} ms"
	start "$l"
done
echo "$times" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {printf "process kills: %d, TTL %s: min %d ms, median %d ms, max %d ms\n", NR, "'"$TTL"'", a[1], a[int((NR+1)/2)], a[NR]}'
