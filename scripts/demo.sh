#!/usr/bin/env bash
# Sets up (Debian's tor, a venv with onionfleet) and runs `onionfleet demo`: a private Tor network
# on 127.0.0.1, a target onion, three onionfleet nodes and a client; a live table of who serves;
# kill -9 of the publisher and the failover; a summary. Idempotent.
# Extra arguments go to the demo (e.g. `bash scripts/demo.sh --check`; `--help` lists them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
VENV="${ONIONFLEET_VENV:-$ROOT/.venv}"
exec "$VENV/bin/onionfleet" demo "$@"
