#!/usr/bin/env bash
# One command from a fresh clone to a running assistant: installs what is missing, builds the
# embedding model and the indexes (with progress bars) on first use, then runs `python -m bot ARGS`
# (default: `serve`, HTTP on port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${VNA_VENV:-.venv}"
[ $# -gt 0 ] || set -- serve
exec "$VENV/bin/python" -m bot "$@"
