#!/usr/bin/env bash
# make demo: the local multi-site demo (docs/demo.md). Three sites on
# loopback (127.0.1.x, 127.0.2.x, 127.0.3.x), one firebreak node each, two
# companies' sample services; burn a site and watch. Extra arguments go to
# `firebreak demo`, e.g. DEMO_ARGS="--burn pangyo --after 10s --exit-after 30s".
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/firebreak
[ -x "$bin" ] || go build -o "$bin" ./cmd/firebreak
# The analysis first: what the 2022 layout loses before anything burns.
if [ -f internal/demo/topology.yaml ]; then
  echo "=== firebreak analyze internal/demo/topology.yaml (what one site's loss would stop)"
  "$bin" analyze internal/demo/topology.yaml 2>/dev/null | head -n 40 || true
  echo
fi
# shellcheck disable=SC2086 # DEMO_ARGS is split on purpose
exec "$bin" demo ${DEMO_ARGS:-} "$@"
