#!/usr/bin/env bash
# A real LiteLLM proxy for the gateway tests, in its own virtual environment (its dependency
# tree is large and pins versions sora-mcp must not inherit). Idempotent: an environment that
# already holds the pinned release is kept. Prints the environment's path on its last line.
#
# 1.106.x is the newest release whose `[proxy]` extra resolves from the package registry here
# (1.108-1.110 need proxy-extras builds that are not published there). 1.107.0 was a
# compromised release: never install it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${LITELLM_VERSION:-1.106.12}"
case "$VERSION" in
  1.107.0) echo "litellm 1.107.0 is a compromised release; refusing to install it" >&2; exit 1 ;;
esac
VENV="${LITELLM_VENV:-.ci-cache/litellm-$VERSION}"
MARK="$VENV/.installed"
if [ -f "$MARK" ] && [ -x "$VENV/bin/litellm" ]; then
  echo "litellm $VERSION already in $VENV" >&2
  echo "$VENV"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
start=$(date +%s)
python3 -m venv "$VENV"
LOG="$(mktemp)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "litellm[proxy]==$VERSION" >"$LOG" 2>&1 \
  || { grep -v "^WARNING: Location" "$LOG" >&2; rm -f "$LOG"; exit 1; }
rm -f "$LOG"
LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c "import litellm.proxy.proxy_server" >/dev/null
# grep reads pip's whole output (no -q): with pipefail, a grep that exits early would make pip
# die of SIGPIPE and fail this step at random.
"$VENV/bin/python" -m pip show litellm 2>/dev/null | grep "^Version: $VERSION$" >/dev/null
touch "$MARK"
echo "litellm $VERSION installed in $VENV in $(( $(date +%s) - start )) s" >&2
echo "$VENV"
