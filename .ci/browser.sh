# Source this (". .ci/browser.sh"): make sure Debian's Chromium is installed for the studio
# view's browser tests and export SORA_MCP_REQUIRE_BROWSER=1, so a missing browser fails those
# tests instead of skipping them. Playwright for Python drives this system browser by its path;
# Playwright's own browser download cannot reach its servers here.

if [ ! -x /usr/bin/chromium ]; then
  echo "== browser: installing chromium with apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "== browser: chromium $(dpkg-query -W -f='${Version}' chromium 2>/dev/null || echo '(not from apt)')"
export SORA_MCP_REQUIRE_BROWSER=1
