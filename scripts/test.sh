#!/usr/bin/env bash
# The project's test command: installs what is missing, then runs lint, the type check and the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k text -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh
VENV="${VNA_VENV:-.venv}"
"$VENV/bin/ruff" check bot connectors tests scripts
"$VENV/bin/python" -m mypy  # bot/ and connectors/, configured in pyproject.toml
"$VENV/bin/python" -m pytest "$@"
