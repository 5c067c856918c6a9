#!/usr/bin/env bash
# Idempotent set-up for onionfleet on Debian/Ubuntu: Debian's tor, then a venv with onionfleet[dev].
# Sourced by scripts/demo.sh and scripts/test.sh. Set ONIONFLEET_WITH_WIREGUARD=1 to also install
# wireguard-go and wireguard-tools (the WireGuard tests need them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ONIONFLEET_VENV:-$ROOT/.venv}"

need_pkgs=()
command -v tor >/dev/null 2>&1 || need_pkgs+=(tor)
command -v tor-gencert >/dev/null 2>&1 || need_pkgs+=(tor)
command -v socat >/dev/null 2>&1 || need_pkgs+=(socat)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
if [ "${ONIONFLEET_WITH_WIREGUARD:-0}" = 1 ]; then
  command -v wg >/dev/null 2>&1 || need_pkgs+=(wireguard-tools)
  command -v wireguard-go >/dev/null 2>&1 || need_pkgs+=(wireguard-go)
fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  # de-duplicate
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "onionfleet needs: ${need_pkgs[*]}. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
  echo ">> apt-get install ${need_pkgs[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Debian starts a system tor service on install; onionfleet never uses it. Leave it alone.

if [ ! -x "$VENV/bin/python" ]; then
  echo ">> creating venv $VENV" >&2
  python3 -m venv "$VENV"
fi
stamp="$VENV/.onionfleet-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo ">> pip install -e .[dev] into $VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "$ROOT[dev]"
  touch "$stamp"
fi
