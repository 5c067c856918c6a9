#!/usr/bin/env bash
# Sets up (Debian's tor, a venv) and runs the demo on a private Tor network on 127.0.0.1.
# Extra arguments go to the demo command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
VENV="${ONIONFLEET_VENV:-$ROOT/.venv}"
exec "$VENV/bin/onionfleet" testnet up --demo "$@"
