"""A real PostgreSQL server for the tests, and a fresh database for each test that asks.

The server is the one named by SORA_MCP_TEST_POSTGRES_URL (CI starts it with .ci/postgres.sh);
without it, a throwaway cluster is started for the session from the PostgreSQL server binaries
if they are on this machine (as the `postgres` user when the tests run as root, since initdb and
postgres refuse root). With neither, the PostgreSQL tests are skipped — unless
SORA_MCP_REQUIRE_POSTGRES or CI is set: there a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.store import Registry

URL_VAR = "SORA_MCP_TEST_POSTGRES_URL"
_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def _required() -> bool:
    return bool(os.environ.get("SORA_MCP_REQUIRE_POSTGRES") or os.environ.get("CI"))


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"PostgreSQL is required here but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


def _bin_dir() -> Path | None:
    found = next((Path(d) for d in _BIN_DIRS if (Path(d) / "initdb").exists()), None)
    if found is None and (initdb := shutil.which("initdb")):
        found = Path(initdb).parent
    return found


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running PostgreSQL server's `postgres` database (superuser, trusted)."""
    url = os.environ.get(URL_VAR)
    if url:
        yield url
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable(f"{URL_VAR} is unset and no PostgreSQL server binaries (initdb) were found")
        return
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _unavailable("the tests run as root and runuser is missing to start PostgreSQL as `postgres`")
    with tempfile.TemporaryDirectory(prefix="sora-mcp-pg-") as folder:
        root = Path(folder)
        if os.geteuid() == 0:
            shutil.chown(root, user="postgres")
        data = root / "data"
        subprocess.run(
            _as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{root}' -c max_connections=300 -c fsync=off"
        )
        pg_ctl = str(bin_dir / "pg_ctl")
        subprocess.run(
            _as_server_user(
                [pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start"]
            ),
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql://postgres@/postgres?host={root}"
        finally:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
            )


def database_url(server_url: str, name: str) -> str:
    """`server_url` pointed at the database `name` instead."""
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test (connections and all)."""
    name = f"sora_test_{uuid.uuid4().hex[:16]}"
    try:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable(f"the server at {postgres_server} cannot be reached ({exc})")
    try:
        yield database_url(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["diskcache", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Registry]:
    """A registry store of each kind, on the test's clock: the embedded one, then PostgreSQL."""
    if request.param == "postgres":
        with PostgresRegistry.open(request.getfixturevalue("postgres_url"), now=clock.now) as pg:
            yield pg  # type: ignore[misc]
        return
    with Registry.open(tmp_path / "store", now=clock.now) as disk:
        yield disk
