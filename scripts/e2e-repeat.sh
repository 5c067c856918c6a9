#!/usr/bin/env bash
# Runs the end-to-end module (tests/integration/test_e2e_cluster.py) N times, each on a fresh
# private Tor network, as CI does (CI=true), and prints the tally: green and red runs, and for
# every failed fetch its explanation (its circuits and streams, and whose fault it was:
# onionfleet, tor or unexplained; docs/testing.md).
#
#   bash scripts/e2e-repeat.sh 10          # 10 runs
#   bash scripts/e2e-repeat.sh 5 --busy    # 5 runs with one core kept busy throughout
#
# Each run's output and artifacts (tor logs, circuit traces) stay in $ONIONFLEET_REPEAT_DIR
# (default: ./test-artifacts/e2e-repeat-<time>). Extra arguments after N (and --busy) go to
# pytest. Exit status: 0 if every run was green.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "usage: bash scripts/e2e-repeat.sh N [--busy] [pytest args…]" >&2; exit 2; }
[ $# -ge 1 ] || usage
runs="$1"; shift
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || usage
busy=0
if [ "${1:-}" = "--busy" ]; then busy=1; shift; fi
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
VENV="${ONIONFLEET_VENV:-$ROOT/.venv}"
out="${ONIONFLEET_REPEAT_DIR:-$ROOT/test-artifacts/e2e-repeat-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
green=0; red=0
for i in $(seq 1 "$runs"); do
  run_dir="$out/run-$i"
  mkdir -p "$run_dir"
  started=$(date +%s)
  set +e
  CI=true ONIONFLEET_ARTIFACTS="$run_dir" ONIONFLEET_BUSY_CORE="$busy" \
    "$VENV/bin/python" -m pytest tests/integration/test_e2e_cluster.py -p no:cacheprovider \
    -q -s "$@" >"$run_dir/output.log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - started ))
  if [ "$rc" -eq 0 ]; then
    green=$((green + 1)); verdict=green
  else
    red=$((red + 1)); verdict="red (pytest exit $rc)"
  fi
  echo "run $i/$runs: $verdict in ${took} s$([ "$busy" = 1 ] && echo ', one core busy')"
  grep -E '^FAILED |^ERROR ' "$run_dir/output.log" | sed 's/^/  /' || true
  "$VENV/bin/onionfleet" testnet fetch-report "$run_dir" | sed 's/^/  /'
done
echo "tally: $green green, $red red of $runs runs$([ "$busy" = 1 ] && echo ' (one core busy)')"
echo "outputs and artifacts: $out"
[ "$red" -eq 0 ]
