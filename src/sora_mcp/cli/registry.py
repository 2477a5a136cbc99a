"""`sora-mcp registry export | import`: the registry as JSON lines, out of one store and into another
(the format and its guarantees are in `registry/transfer.py`).

    SORA_MCP_HOME=~/old sora-mcp registry export > registry.jsonl
    SORA_MCP_REGISTRY_URL=postgresql://… sora-mcp registry import < registry.jsonl
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from typing import IO, Any

from sora_mcp.config import Settings
from sora_mcp.errors import RegistryError
from sora_mcp.registry.factory import open_registry
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.transfer import export_lines, import_lines


def add_commands(sub: Any) -> None:
    """Add `registry export|import` to the CLI's subparsers."""
    registry = sub.add_parser(
        "registry", help="export or import the registry (move it between SORA_MCP_HOME and PostgreSQL)"
    )
    actions = registry.add_subparsers(dest="registry_command", required=True)
    export = actions.add_parser("export", help="write every record as JSON lines (stdout by default)")
    export.add_argument("-o", "--output", help="file to write instead of stdout")
    imp = actions.add_parser("import", help="add the records of an export (stdin by default)")
    imp.add_argument("input", nargs="?", help="file to read instead of stdin")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `registry export|import` on the registry `settings` point at."""
    try:
        with open_registry(settings) as store:
            if args.registry_command == "export":
                return _export(store, args.output)
            return _import(store, args.input)
    except RegistryError as exc:
        print(f"sora-mcp registry: {exc}", file=sys.stderr)
        return 1


def _export(store: RegistryStore, output: str | None) -> int:
    target: IO[str]
    with open(output, "w", encoding="utf-8") if output else nullcontext(sys.stdout) as target:
        count = 0
        for line in export_lines(store):
            target.write(line + "\n")
            count += 1
    print(f"sora-mcp registry: exported {count - 1} record(s)", file=sys.stderr)
    return 0


def _import(store: RegistryStore, source: str | None) -> int:
    with open(source, encoding="utf-8") if source else nullcontext(sys.stdin) as lines:
        counts = import_lines(store, lines)
    print(f"sora-mcp registry: {counts}", file=sys.stderr)
    return 0
