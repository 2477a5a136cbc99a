"""Command line: `sora-mcp serve | emulator | demo` (serve is the default), the people's commands
`generate | list | show | open | extend | edit | batch` (`people.py`), `doctor` (`doctor.py`) and
`registry export | import` (`registry.py`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sora_mcp import __version__
from sora_mcp.config import Settings
from sora_mcp.emulator.profiles import EMULATOR_PROFILES
from sora_mcp.errors import ConfigError, SoraError

log = logging.getLogger("sora_mcp")


_OWN_COMMANDS = ("serve", "emulator", "demo")


def _parser(everything: bool = True) -> argparse.ArgumentParser:
    """The command line; without `everything`, only `serve`, `emulator` and `demo`."""
    parser = argparse.ArgumentParser(
        prog="sora-mcp",
        description="MCP server for video generation on the OpenAI Videos (Sora 2) API format. "
        "With no OPENAI_API_KEY it uses the built-in emulator.",
    )
    parser.add_argument("--version", action="version", version=f"sora-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (to stderr)")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the MCP server (default: stdio)")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument(
        "--batch-concurrency",
        type=int,
        help="direct-mode batch items sent at once (default: $SORA_MCP_BATCH_CONCURRENCY or 3)",
    )

    emu = sub.add_parser("emulator", help="serve the Videos API emulator on a socket")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8090)
    emu.add_argument("--root", help="state folder (default: $SORA_MCP_HOME/emulator)")
    emu.add_argument("--speed", type=float, help="render speed-up over the real service (default 20)")
    emu.add_argument("--api-key", help="require this bearer token (default: accept any)")
    emu.add_argument(
        "--profile",
        choices=sorted(EMULATOR_PROFILES),
        help="answer like this server: its ids, statuses, headers and missing endpoints "
        "(default: $SORA_MCP_PROFILE, else the plain contract)",
    )

    demo = sub.add_parser(
        "demo", help="run an end-to-end production through the server, as an assistant would"
    )
    demo.add_argument(
        "--remote",
        action="store_true",
        help="use the configured remote backend instead of the emulator (BILLED)",
    )
    if everything:
        from sora_mcp.cli import doctor, people, registry

        people.add_commands(sub)
        doctor.add_command(sub)
        registry.add_commands(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` names (the first word not an option: no global option takes a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The people's commands import their output and progress bars (rich) and the CLI's own
    # modules; `sora-mcp serve` is started by every MCP client session and should not pay for
    # them (tools/list sooner). Help with no command still lists every command.
    lean = not argv or _command_of(argv) in _OWN_COMMANDS
    args = _parser(everything=not lean).parse_args(argv)
    # stdout belongs to JSON-RPC on stdio: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = args.command or "serve"
    try:
        if command == "serve":
            return _serve(
                getattr(args, "transport", "stdio"),
                getattr(args, "host", "127.0.0.1"),
                getattr(args, "port", 8000),
                getattr(args, "batch_concurrency", None),
            )
        if command == "emulator":
            return _emulator(args)
        if command == "demo":
            from sora_mcp.demo import run_demo

            return run_demo(remote=args.remote)
        if command == "registry":
            from sora_mcp.cli import registry

            return registry.run(args, Settings.from_env())
        from sora_mcp.cli import people

        return people.run(args)
    except ConfigError as exc:
        print(f"sora-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    except SoraError as exc:
        # Expected refusals (bad input, budget, a failed request): the message says what to do.
        print(f"sora-mcp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(transport: str, host: str, port: int, batch_concurrency: int | None = None) -> int:
    from sora_mcp.server.app import build_server

    if batch_concurrency is not None and batch_concurrency < 1:
        raise ConfigError(f"--batch-concurrency must be a whole number ≥ 1; got {batch_concurrency}.")
    settings = Settings.from_env()
    server = build_server(settings, batch_concurrency=batch_concurrency)
    if transport == "stdio":
        server.run("stdio")
        return 0
    import uvicorn

    from sora_mcp.server.http import http_app

    app = http_app(
        server,
        host=host,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
        token=settings.http_token,
    )
    auth = "bearer token required" if settings.http_token else "no token (loopback only)"
    print(f"sora-mcp: streamable HTTP on http://{host}:{port}/mcp ({auth})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from pathlib import Path

    import uvicorn

    from sora_mcp.emulator.app import create_app
    from sora_mcp.emulator.faults import FaultConfig

    settings = Settings.from_env(backend="emulator")
    root = Path(args.root).expanduser().resolve() if args.root else settings.emulator_dir
    faults = FaultConfig.parse(settings.emulator_faults) if settings.emulator_faults else None
    profile = args.profile or settings.profile
    app = create_app(
        root=root,
        speed=args.speed or settings.emulator_speed,
        faults=faults,
        api_key=args.api_key,
        profile=profile,
    )
    print(
        f"sora-mcp emulator: http://{args.host}:{args.port}/v1 (state in {root}; profile {profile or 'emulator'})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
