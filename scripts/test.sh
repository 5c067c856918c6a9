#!/usr/bin/env bash
# Runs everything CI runs: lint (ruff), types (mypy --strict on src/), layer contracts
# (import-linter), then the whole pytest suite including the private-Tor-network tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k descriptor`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
VENV="${ONIONFLEET_VENV:-$ROOT/.venv}"
echo ">> ruff" >&2
"$VENV/bin/ruff" check src tests bench
echo ">> mypy --strict src/onionfleet" >&2
"$VENV/bin/mypy"
echo ">> import-linter" >&2
"$VENV/bin/lint-imports" --no-cache
echo ">> pytest" >&2
"$VENV/bin/python" -m pytest "$@"
