"""The configuration snippets that start this sora-mcp from MCP clients, for `sora-mcp doctor`.

Each names the absolute path of the running installation (desktop clients start servers with
an empty PATH and an unknown working folder) and carries the variables set here that differ
from their defaults; a secret is never printed, only a placeholder to fill in.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from sora_mcp.config import VARIABLES

SERVER_NAME = "sora"


def server_command() -> list[str]:
    """The command that starts this installation's MCP server on stdio."""
    script = Path(sys.argv[0])
    if script.name in ("sora-mcp", "sora-mcp.exe") and script.is_file():
        return [str(script.resolve()), "serve"]
    found = shutil.which("sora-mcp", path=str(Path(sys.executable).parent))
    if found:
        return [str(Path(found).resolve()), "serve"]
    return [sys.executable, "-m", "sora_mcp", "serve"]


def server_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The sora-mcp variables set in `environ`; secrets replaced by a placeholder."""
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for var in VARIABLES:
        value = environ.get(var.name, "").strip()
        if value:
            env[var.name] = f"<your {var.name}>" if var.secret else value
    return env


def claude_desktop_path() -> str:
    if sys.platform == "darwin":
        return "~/Library/Application Support/Claude/claude_desktop_config.json"
    if sys.platform == "win32":
        return r"%APPDATA%\Claude\claude_desktop_config.json"
    return "~/.config/Claude/claude_desktop_config.json"


def snippets(command: list[str], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Client name → (where it goes, the text), for Claude Desktop, Claude Code, Cursor and VS Code."""
    entry: dict[str, object] = {"command": command[0], "args": command[1:]}
    if env:
        entry["env"] = env
    desktop = json.dumps({"mcpServers": {SERVER_NAME: entry}}, indent=2)
    vscode = json.dumps({"servers": {SERVER_NAME: {"type": "stdio", **entry}}}, indent=2)
    flags = "".join(f" -e {shlex.quote(f'{k}={v}')}" for k, v in env.items())
    code = f"claude mcp add {SERVER_NAME}{flags} -- {shlex.join(command)}"
    return {
        "Claude Desktop": (claude_desktop_path(), desktop),
        "Claude Code": ("a shell", code),
        "Cursor": ("~/.cursor/mcp.json", desktop),
        "VS Code": (".vscode/mcp.json in the workspace", vscode),
    }
