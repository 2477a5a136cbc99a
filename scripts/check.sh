#!/usr/bin/env bash
# Set up a fresh virtual environment (if missing) and run every check: lint, types, packaging,
# tests, and the newcomer's demo itself. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SORA_MCP_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
echo "== ruff"
"$VENV/bin/ruff" check src tests bench
"$VENV/bin/ruff" format --check src tests bench
echo "== layers"
# server → batch → studio → registry/media/api → base; the emulator apart; mcp only in server/.
"$VENV/bin/lint-imports"
echo "== mypy"
"$VENV/bin/mypy"
echo "== wheel"
# The prompt library lives in prompts/, outside src/, and is mapped into the package; the package
# list in pyproject.toml is explicit. Build the wheel (offline: no build isolation) from a copy, so
# no build/ or egg-info is left behind, and prove it ships every module and every prompt file and
# that importlib.resources reads the library from inside it.
WHEEL_DIR="$(mktemp -d)"
trap 'rm -rf "$WHEEL_DIR"' EXIT
mkdir "$WHEEL_DIR/tree"
cp -R pyproject.toml README.md src prompts "$WHEEL_DIR/tree/"
rm -rf "$WHEEL_DIR"/tree/src/*.egg-info
"$VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WHEEL_DIR" "$WHEEL_DIR/tree"
"$VENV/bin/python" - "$WHEEL_DIR" <<'PY'
import sys
import zipfile
from pathlib import Path

(wheel,) = Path(sys.argv[1]).glob("*.whl")
shipped = set(zipfile.ZipFile(wheel).namelist())
expected = {"sora_mcp/py.typed", "sora_mcp/prompts/__init__.py"}
expected |= {f"sora_mcp/{p.relative_to('src/sora_mcp').as_posix()}" for p in Path("src/sora_mcp").rglob("*.py")}
expected |= {f"sora_mcp/prompts/{p.relative_to('prompts').as_posix()}" for p in Path("prompts").rglob("*.md")}
expected |= {f"sora_mcp/{p.relative_to('src/sora_mcp').as_posix()}" for p in Path("src/sora_mcp").rglob("*.html")}
missing = sorted(expected - shipped)
if missing:
    sys.exit(f"{wheel.name} is missing {len(missing)} file(s):\n  " + "\n  ".join(missing))
sys.path.insert(0, str(wheel))
from sora_mcp import templates  # noqa: E402  (imported from the wheel, not the checkout)

assert Path(templates.__file__).is_relative_to(wheel), templates.__file__
guides, prompts = templates.load_guides(), templates.load_templates()
print(f"{wheel.name}: {len(shipped)} files; {len(guides)} guides and {len(prompts)} prompt templates load from it")
PY
echo "== demo"
# The README's first command must keep working: run it in throwaway folders.
DEMO_DIR="$(mktemp -d)"
trap 'rm -rf "$WHEEL_DIR" "$DEMO_DIR"' EXIT
SORA_MCP_HOME="$DEMO_DIR/home" SORA_MCP_OUTPUT_DIR="$DEMO_DIR/out" "$VENV/bin/sora-mcp" demo > "$DEMO_DIR/demo.log" 2>&1 \
  || { cat "$DEMO_DIR/demo.log"; exit 1; }
tail -n 1 "$DEMO_DIR/demo.log"
echo "== pytest (with the coverage floor from pyproject.toml)"
"$VENV/bin/pytest" -q --cov --cov-report=term "$@"
echo "== benchmarks (quick smoke run: they must run; figures are not judged here)"
SORA_MCP_VENV="$VENV" bash scripts/bench.sh --quick
