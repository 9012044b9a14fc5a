#!/usr/bin/env bash
# Install Strongroom into ./.venv on Debian or Ubuntu with Python 3.11 or newer.
#   ./install.sh          the application
#   ./install.sh --dev    the application and what its tests need (pytest, Playwright, ruff)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

if ! command -v "$PYTHON" >/dev/null; then
  echo "install.sh: $PYTHON not found. On Debian/Ubuntu: sudo apt-get install python3 python3-venv" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: Strongroom needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "install.sh: installing python3-venv (Debian's venv support)"
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "Strongroom $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("strongroom"))') is installed in .venv."
echo "Start it with sample data:  .venv/bin/strongroom demo"
