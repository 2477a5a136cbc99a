#!/usr/bin/env bash
# Set up a fresh virtual environment (if missing) and run every check: lint, types, tests.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SORA_MCP_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
echo "== ruff"
"$VENV/bin/ruff" check src tests
"$VENV/bin/ruff" format --check src tests
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/pytest" -q "$@"
