#!/usr/bin/env bash
# make demo: the local multi-site demo. Until `firebreak demo` exists this
# runs `firebreak analyze` on the example topologies and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/firebreak
if "$bin" demo --help >/dev/null 2>&1; then
  exec "$bin" demo "$@"
fi
echo "firebreak demo: the live multi-site demo is not built yet; showing the analysis of the example topologies instead."
for f in examples/kakao-2022.yaml examples/fixed.yaml; do
  [ -f "$f" ] || continue
  echo
  echo "=== firebreak analyze $f"
  "$bin" analyze "$f" || true
done
