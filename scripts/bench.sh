#!/usr/bin/env bash
# Run every benchmark in bench/: each prints its figures as ratios against its baseline, measured
# side by side in the same run. `--quick` is the smoke run CI does (small sizes; it asserts that
# the benchmarks still run, never how fast). The README's performance table comes from a full run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SORA_MCP_VENV:-.venv}"
for bench in bench/bench_*.py; do
  echo "== $bench"
  "$VENV/bin/python" "$bench" "$@"
done
