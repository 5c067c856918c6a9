#!/usr/bin/env bash
# Install onionfleet on Debian or Ubuntu. Idempotent: running it again only upgrades the package
# and refreshes the unit. Run as root. It does NOT start or enable the service.
#
#   sudo deploy/install.sh [--dry-run] [--prefix DIR] [--wireguard] [--no-apt] [--no-venv]
#                          [--python PYTHON] [SOURCE_DIR]
#
# SOURCE_DIR is the onionfleet checkout to install (default: the repository this script is in).
# What it does:
#   1. apt-get install --no-install-recommends tor wireguard-tools python3 python3-venv
#   2. a system user and group `onionfleet` (no login shell, home /var/lib/onionfleet)
#   3. /etc/onionfleet (root:onionfleet 0750) and /var/lib/onionfleet (onionfleet 0700)
#   4. a virtualenv in /opt/onionfleet with `pip install SOURCE_DIR`, and /usr/local/bin/onionfleet
#   5. /etc/systemd/system/onionfleet.service (+ the CAP_NET_ADMIN drop-in with --wireguard)
#
# --dry-run   print every action instead of doing it
# --prefix    install below DIR instead of / (for testing: skips apt, the user, ownership and
#             systemctl)
# --no-apt    do not run apt-get (the packages are installed already)
# --no-venv   do not create the virtualenv or run pip (you install the Python package yourself)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE_DIR="$(dirname "$SCRIPT_DIR")"
PREFIX=""
DRY_RUN=0
WIREGUARD=0
DO_APT=1
DO_VENV=1
PYTHON=python3
SERVICE_USER=onionfleet

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "install.sh: error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --prefix)
            [ $# -ge 2 ] || die "--prefix needs a directory"
            PREFIX="${2%/}"
            shift
            ;;
        --prefix=*) PREFIX="${1#--prefix=}"; PREFIX="${PREFIX%/}" ;;
        --wireguard) WIREGUARD=1 ;;
        --no-apt) DO_APT=0 ;;
        --no-venv) DO_VENV=0 ;;
        --python)
            [ $# -ge 2 ] || die "--python needs an interpreter"
            PYTHON="$2"
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) SOURCE_DIR="$1" ;;
    esac
    shift
done

if [ -n "$PREFIX" ] && [ "${PREFIX#/}" = "$PREFIX" ]; then
    die "--prefix must be an absolute path"
fi
[ -f "$SOURCE_DIR/pyproject.toml" ] || die "$SOURCE_DIR is not an onionfleet checkout (no pyproject.toml)"
[ -f "$SCRIPT_DIR/onionfleet.service" ] || die "$SCRIPT_DIR/onionfleet.service is missing"

# With --prefix we install into a test root: no packages, users, ownership or systemd.
SYSTEM=1
[ -n "$PREFIX" ] && SYSTEM=0

if [ "$DRY_RUN" -eq 0 ] && [ "$SYSTEM" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0), or try --dry-run"
fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

note() {
    echo "==> $*"
}

ETC="$PREFIX/etc/onionfleet"
STATE="$PREFIX/var/lib/onionfleet"
OPT="$PREFIX/opt/onionfleet"
BIN_LINK="$PREFIX/usr/local/bin/onionfleet"
UNIT_DIR="$PREFIX/etc/systemd/system"

# 1. packages
if [ "$SYSTEM" -eq 1 ] && [ "$DO_APT" -eq 1 ]; then
    note "installing tor, wireguard-tools and python3-venv"
    run env DEBIAN_FRONTEND=noninteractive apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        tor wireguard-tools python3 python3-venv
fi

# 2. the service user
if [ "$SYSTEM" -eq 1 ]; then
    if getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
        note "user $SERVICE_USER exists"
    else
        note "creating system user $SERVICE_USER"
        run useradd --system --user-group --home-dir /var/lib/onionfleet --no-create-home \
            --shell /usr/sbin/nologin --comment "onionfleet daemon" "$SERVICE_USER"
    fi
fi

# 3. directories (install -d fixes the mode and owner of existing ones too)
note "directories $ETC (0750) and $STATE (0700)"
if [ "$SYSTEM" -eq 1 ]; then
    run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
    run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE"
else
    run install -d -m 0750 "$ETC"
    run install -d -m 0700 "$STATE"
fi

# 4. the Python package in a virtualenv
if [ "$DO_VENV" -eq 1 ]; then
    if [ -x "$OPT/bin/python" ]; then
        note "virtualenv $OPT exists"
    else
        note "creating virtualenv $OPT"
        run "$PYTHON" -m venv "$OPT"
    fi
    note "installing onionfleet from $SOURCE_DIR"
    run "$OPT/bin/pip" install --disable-pip-version-check --upgrade "$SOURCE_DIR"
    run install -d -m 0755 "$(dirname "$BIN_LINK")"
    run ln -sfn "$OPT/bin/onionfleet" "$BIN_LINK"
fi

# 5. systemd unit (installed, not enabled, not started)
note "installing the systemd unit $UNIT_DIR/onionfleet.service"
run install -d -m 0755 "$UNIT_DIR"
run install -m 0644 "$SCRIPT_DIR/onionfleet.service" "$UNIT_DIR/onionfleet.service"
if [ "$WIREGUARD" -eq 1 ]; then
    note "installing the CAP_NET_ADMIN drop-in for managed WireGuard"
    run install -d -m 0755 "$UNIT_DIR/onionfleet.service.d"
    run install -m 0644 "$SCRIPT_DIR/onionfleet-wireguard.conf" \
        "$UNIT_DIR/onionfleet.service.d/wireguard.conf"
fi
if [ "$SYSTEM" -eq 1 ] && [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
fi

cat <<NEXT
==> done; the service is installed but neither enabled nor started. Next steps
    (docs/cluster-setup.md walks through a 3-node cluster):
    first node:   onionfleet init --node-id node-a --data-dir /var/lib/onionfleet \\
                      --listen HOST:PORT --target-onion ADDR.onion:PORT --out /etc/onionfleet/node.toml
    other nodes:  onionfleet join INVITE_FILE ... --out /etc/onionfleet/node.toml (init prints it)
    then:         chown -R $SERVICE_USER:$SERVICE_USER /var/lib/onionfleet
                  chgrp $SERVICE_USER /etc/onionfleet/node.toml
                  onionfleet config check /etc/onionfleet/node.toml
                  systemctl enable --now onionfleet
NEXT
