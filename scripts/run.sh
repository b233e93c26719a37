#!/usr/bin/env bash
# One command from a fresh clone to a running assistant: installs what is missing (the Python environment; espeak-ng
# and sox for the phone line's voice, as root with apt-get), builds the
# embedding model and the indexes (with progress bars) on first use, then runs `python -m bot ARGS`
# (default: `serve`, HTTP on port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh runtime || echo "run: could not install espeak-ng and sox; the phone line stays off" >&2
VENV="${VNA_VENV:-.venv}"
[ $# -gt 0 ] || set -- serve
exec "$VENV/bin/python" -m bot "$@"
