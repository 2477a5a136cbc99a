"""`sora-mcp doctor`: what this installation would run with, and whether it can.

Read-only by design: it writes no file, creates no folder, opens no registry (opening one may
migrate it) and sends no billable request — the backend is asked one free GET. Sections:
configuration (every variable of `config.VARIABLES`, its effective value and where it came from,
secrets redacted), the backend (reachability, the profile), a shared PostgreSQL registry
(reachable, its schema, what the first start does to it), folders and permissions, the media
libraries, and the snippets that start this server from Claude Desktop, Claude Code, Cursor and
VS Code. Exit status 1 when a check failed, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2

from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import PROFILES, BackendProfile
from sora_mcp.api.retry import RetryPolicy
from sora_mcp.cli import clients
from sora_mcp.config import VARIABLES, EnvVar, Settings, redacted_url
from sora_mcp.errors import AuthenticationError, ConfigError, NotFoundError, SoraError
from sora_mcp.registry.factory import probe_registry

Status = Literal["ok", "warn", "fail", "info"]
_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "info": "    "}
PROBE_VIDEO_ID = "video_sora_mcp_doctor_probe"
"""Asked for on backends that cannot list videos: a 404 proves the backend answers and takes the key."""


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    status: Status
    detail: str


def configuration(env: Mapping[str, str]) -> tuple[Settings | None, list[Check]]:
    """Every variable with its effective value and source; the settings, or None if they fail."""
    try:
        settings: Settings | None = Settings.from_env(env)
    except ConfigError as exc:
        settings = None
        failure = Check("configuration", "settings", "fail", str(exc))
    checks = [_variable(var, env, settings) for var in VARIABLES]
    if settings is None:
        checks.append(failure)
    return settings, checks


def _variable(var: EnvVar, env: Mapping[str, str], settings: Settings | None) -> Check:
    names = [n for n in (var.name, *var.old_names) if env.get(n, "").strip()]
    source = (
        "default" if not names else ("environment" if names[0] == var.name else f"former name {names[0]}")
    )
    status: Status = "warn" if names and names[0] != var.name else "info"
    if settings is None:
        raw = env.get(names[0], "").strip() if names else None
        value = "(not read)" if raw is None else _redact(var, raw)
    else:
        value = _redact(var, settings.value_of(var))
    return Check("configuration", var.name, status, f"{value}  [{source}]")


def _redact(var: EnvVar, value: Any) -> str:
    if var.secret:
        return "set (hidden)" if value else "not set"
    if value is None or value == ():
        return "—"
    if isinstance(value, tuple):
        return os.pathsep.join(str(v) for v in value) if var.field == "input_roots" else ",".join(value)
    return str(value)


async def backend(settings: Settings) -> list[Check]:
    """The profile, and one free GET to the backend (none for the in-process emulator)."""
    profile = PROFILES[settings.profile]
    caps = ", ".join(sorted(profile.capabilities))
    checks = [Check("backend", "profile", "info", f"{profile.name} (optional endpoints: {caps})")]
    if settings.is_emulator:
        detail = (
            f"the built-in emulator, in this process (state in {settings.emulator_dir}); nothing to reach"
        )
        return [*checks, Check("backend", "backend", "ok", detail)]
    return [*checks, await _reach(settings, profile)]


async def _reach(settings: Settings, profile: BackendProfile) -> Check:
    timeout = httpx2.Timeout(min(settings.request_timeout, 15.0))
    start = time.monotonic()
    async with httpx2.AsyncClient(base_url=settings.base_url, timeout=timeout) as http:
        # One look, no retries: a doctor reports what it saw rather than waiting out an outage.
        client = VideosClient(
            http, api_key=settings.api_key, profile=profile, retry=RetryPolicy(max_retries=0)
        )
        try:
            if "list" in profile.capabilities:
                await client.list_videos(limit=1)
                what = "GET /videos?limit=1"
            else:
                what = f"GET /videos/{PROBE_VIDEO_ID}"
                with contextlib.suppress(NotFoundError):
                    await client.retrieve_video(PROBE_VIDEO_ID)
        except AuthenticationError as exc:
            return Check("backend", settings.base_url, "fail", f"reached, but the key was refused: {exc}")
        except (SoraError, httpx2.HTTPError) as exc:
            return Check("backend", settings.base_url, "fail", f"cannot use it: {type(exc).__name__}: {exc}")
    elapsed = (time.monotonic() - start) * 1000
    return Check(
        "backend", settings.base_url, "ok", f"answered {what} in {elapsed:.0f} ms (free; nothing billed)"
    )


def registry(settings: Settings) -> list[Check]:
    """A shared PostgreSQL registry: reached, and what its first start would do (read-only)."""
    if settings.registry_url is None:
        return []
    name = redacted_url(settings.registry_url)
    try:
        probed = probe_registry(settings)
    except ConfigError as exc:
        return [Check("registry", name, "fail", str(exc))]
    assert probed is not None  # a URL is set
    healthy, detail = probed
    return [Check("registry", name, "ok" if healthy else "fail", detail)]


def folders(settings: Settings) -> list[Check]:
    # With a PostgreSQL registry the registry folder is not used.
    places = [
        ("home", settings.home),
        *([("registry", settings.registry_dir)] if settings.registry_url is None else []),
        ("emulator state", settings.emulator_dir),
        ("output", settings.output_dir),
    ]
    checks = [_folder(name, path, write=True) for name, path in places]
    checks += [_folder("input", path, write=False) for path in settings.input_roots]
    return checks


def _folder(name: str, path: Path, *, write: bool) -> Check:
    need = os.W_OK if write else os.R_OK
    verb = "writable" if write else "readable"
    if path.is_dir():
        ok = os.access(path, need | os.X_OK)
        return Check("folders", name, "ok" if ok else "fail", f"{path} ({verb if ok else 'not ' + verb})")
    if path.exists():
        return Check("folders", name, "fail", f"{path} exists but is not a folder")
    if not write:
        return Check("folders", name, "warn", f"{path} does not exist")
    parent = next((p for p in path.parents if p.exists()), None)
    ok = parent is not None and os.access(parent, os.W_OK | os.X_OK)
    detail = f"{path} (not created yet; {'will be created' if ok else f'{parent} is not writable'})"
    return Check("folders", name, "ok" if ok else "fail", detail)


def media() -> list[Check]:
    checks: list[Check] = []
    try:
        import av

        from sora_mcp.media.video import _CODEC

        try:
            av.codec.Codec(_CODEC, "w")
            checks.append(Check("media", "PyAV", "ok", f"{av.__version__}, {_CODEC} encoder available"))
        except Exception as exc:  # an FFmpeg build without the encoder: say so, whatever PyAV raised
            checks.append(Check("media", "PyAV", "fail", f"{av.__version__}, no {_CODEC} encoder: {exc}"))
    except ImportError as exc:
        checks.append(Check("media", "PyAV", "fail", f"cannot import av: {exc}"))
    try:
        import PIL
        from PIL import features

        webp = "WebP supported" if features.check("webp") else "no WebP support (thumbnails are WebP)"
        checks.append(
            Check("media", "Pillow", "ok" if features.check("webp") else "warn", f"{PIL.__version__}, {webp}")
        )
    except ImportError as exc:
        checks.append(Check("media", "Pillow", "fail", f"cannot import PIL: {exc}"))
    return checks


async def run_checks(env: Mapping[str, str]) -> tuple[list[Check], Settings | None]:
    settings, checks = configuration(env)
    if settings is not None:
        checks += await backend(settings)
        checks += await anyio.to_thread.run_sync(registry, settings)
        checks += folders(settings)
    checks += await anyio.to_thread.run_sync(media)
    return checks, settings


def report(checks: list[Check], snippets: dict[str, tuple[str, str]], *, as_json: bool) -> None:
    if as_json:
        blob = {
            "checks": [asdict(c) for c in checks],
            "clients": {name: {"where": where, "text": text} for name, (where, text) in snippets.items()},
        }
        print(json.dumps(blob, indent=2))
        return
    section = ""
    for check in checks:
        if check.section != section:
            section = check.section
            print(f"\n{section.capitalize()}")
        print(f"  {_MARK[check.status]} {check.name:<30} {check.detail}")
    print("\nClient configuration (this installation; nothing was written)")
    for name, (where, text) in snippets.items():
        print(f"\n  {name} — {where}:\n")
        print("\n".join("    " + line for line in text.splitlines()))


async def doctor(args: argparse.Namespace) -> int:
    checks, _settings = await run_checks(os.environ)
    snippets = clients.snippets(clients.server_command(), clients.server_env())
    report(checks, snippets, as_json=args.json)
    failed = [c for c in checks if c.status == "fail"]
    if not args.json:
        print(f"\n{len(failed)} problem(s) found." if failed else "\nEverything checked is in order.")
    return 1 if failed else 0


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor", help="check configuration, backend, folders and media libraries (read-only, free)"
    )
    parser.add_argument("--json", action="store_true", help="the checks and client snippets as JSON")
    parser.set_defaults(run=doctor)
