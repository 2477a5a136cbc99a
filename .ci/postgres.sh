# Source this (". .ci/postgres.sh"): start a throwaway PostgreSQL server for the tests and export
# SORA_MCP_TEST_POSTGRES_URL (and SORA_MCP_REQUIRE_POSTGRES=1, so a missing server fails the
# PostgreSQL tests instead of skipping them). The cluster lives in a temp folder, listens on a
# Unix socket only (no port to collide with), and is stopped and deleted when the sourcing shell
# (or whatever it `exec`s into — the PID stays the same) exits.
#
# initdb and postgres refuse to run as root, and CI runs as root: the server then runs as the
# `postgres` system user (created if missing). The binaries come from the PostgreSQL 15 server
# packages (installed with apt if missing).

_pg_bin="${SORA_MCP_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$_pg_bin/initdb" ]; then
  echo "== postgres: installing postgresql-15 with apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

_pg_user="$(id -un)"
if [ "$(id -u)" = 0 ]; then
  _pg_user=postgres
  id -u "$_pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$_pg_user"
fi
_pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u "$_pg_user" -- "$@"; else "$@"; fi; }

_pg_dir="$(mktemp -d -t sora-mcp-pg.XXXXXX)"
chown "$_pg_user" "$_pg_dir"
_pg_as "$_pg_bin/initdb" -D "$_pg_dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$_pg_dir/initdb.log" 2>&1 \
  || { cat "$_pg_dir/initdb.log"; return 1; }
# No TCP listener; enough connections for the fleet tests (several server processes, each a pool).
_pg_as "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -l "$_pg_dir/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$_pg_dir' -c max_connections=300 -c fsync=off" start >/dev/null \
  || { cat "$_pg_dir/server.log"; return 1; }

export SORA_MCP_TEST_POSTGRES_URL="postgresql://postgres@/postgres?host=$_pg_dir"
export SORA_MCP_REQUIRE_POSTGRES=1
echo "== postgres: $("$_pg_bin/postgres" --version) at $SORA_MCP_TEST_POSTGRES_URL"

# Stop and delete the cluster once the CI process is gone (a trap would not survive `exec`).
(
  trap '' HUP INT
  while kill -0 "$$" 2>/dev/null; do sleep 1; done
  _pg_as "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$_pg_dir"
) >/dev/null 2>&1 &
disown 2>/dev/null || true
