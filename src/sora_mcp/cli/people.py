"""The commands for people: `sora-mcp generate | list | show | open | extend | edit | batch`.

They run on the same domain as the MCP tools — a `Session` over the same registry, output folder
and backend (`batch/session.py`) — with no MCP in between: a video made here is listed by the
server's `list_videos`, and the other way round. Each command parses its arguments, calls the
Studio (or the batch service), and prints: a short human answer on stdout, or the records as
JSON with `--json`; progress bars go to stderr.

Files named on the command line (a first frame, a JSONL batch) are read wherever they are: the
person typed the path, so its folder is allowed for that command, unlike a path a model sends.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeAlias

import anyio

from sora_mcp import catalog
from sora_mcp.batch.plan import BatchRequest, plan_batch
from sora_mcp.batch.session import Session, open_session
from sora_mcp.batch.state import BatchState
from sora_mcp.cli import output
from sora_mcp.cli.progress import batch_bar, video_bars
from sora_mcp.config import Settings
from sora_mcp.errors import InvalidRequest
from sora_mcp.registry.factory import open_registry
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.derive import Derived, edit, extend, plan_generation
from sora_mcp.studio.lineage import children_links, parent_link
from sora_mcp.studio.listing import find_videos

DEFAULT_WAIT = 3600.0
"""How long a command follows its jobs by default (a person can wait longer than a model's call)."""
SECONDS_CHOICES = [int(s) for s in catalog.SECONDS]

Command = Callable[[argparse.Namespace], Awaitable[int]]


@asynccontextmanager
async def _session(files: tuple[str | None, ...] = (), *, batches: bool = False) -> AsyncIterator[Session]:
    """A session for one command; the folders of `files` (local paths the person named) are
    added to the allowed input folders. The batch runner runs only for `batches`: another
    command must not start sending the queued items of earlier batches behind the person's back."""
    settings = Settings.from_env()
    folders = tuple(_absolute(f).parent for f in files if f and _is_local(f))
    if folders:
        settings = dataclasses.replace(settings, input_roots=(*settings.input_roots, *folders))
    async with open_session(settings, resume=False, run_batches=batches) as session:
        yield session


async def _follow(
    session: Session, args: argparse.Namespace, records: list[VideoRecord]
) -> list[VideoRecord]:
    """Wait for `records` with a bar each (and fetch the files of those already completed),
    unless --no-wait."""
    if getattr(args, "no_wait", False):
        return records
    with video_bars(enabled=not args.json) as bars:
        return await session.studio.wait(
            [r.local_id for r in records], timeout=args.timeout, on_progress=bars.update
        )


def _exit_code(records: list[VideoRecord], *, waited: bool) -> int:
    """0 when every video completed (or, without waiting, was started); 1 otherwise."""
    if not waited:
        return 0 if all(r.status not in ("failed", "unknown") for r in records) else 1
    return 0 if all(r.status == "completed" for r in records) else 1


# ---- the commands ----------------------------------------------------------------------------


async def generate_cmd(args: argparse.Namespace) -> int:
    async with _session((args.image,)) as session:
        studio = session.studio
        plan = await plan_generation(
            studio,
            prompt=args.prompt,
            model=args.model,
            size=args.size,
            seconds=args.seconds,
            variations=args.variations,
            image=str(_absolute(args.image)) if _is_local(args.image) else args.image,
            fit=args.fit,
            characters=args.character or (),
            start_from=args.start_from,
            start_from_second=args.start_from_second,
        )
        outcome = await studio.generate(plan)
        output.started(args, outcome.records, plan.cost_per_clip, studio.estimate_seconds(plan))
        records = await _follow(session, args, outcome.records)
        output.videos(args, records, errors=outcome.errors)
        return 1 if outcome.errors else _exit_code(records, waited=not args.no_wait)


async def list_cmd(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    # The registry alone: listing sends nothing, so it needs no backend.
    registry = open_registry(settings)
    try:
        records = find_videos(
            registry,
            status=args.status,
            model=args.model,
            text=args.text,
            character=args.character,
            batch=args.batch,
            parent=args.parent,
            limit=args.limit,
        )
    finally:
        registry.close()
    output.video_table(args, records)
    return 0


async def show_cmd(args: argparse.Namespace) -> int:
    async with _session() as session:
        studio = session.studio
        record = await studio.refresh(args.video_id)
        if args.wait:
            (record,) = await _follow(session, args, [record])
        parent = parent_link(studio.registry, record)
        output.show(args, record, parent, children_links(studio.registry, record))
        return 0 if record.status not in ("failed", "unknown") else 1


async def open_cmd(args: argparse.Namespace) -> int:
    async with _session() as session:
        studio = session.studio
        record = await studio.ensure_downloaded(args.video_id)
        if not _has_file(record, args.variant):
            record, _ = await studio.download(record.local_id, (args.variant,))
    path = Path(record.files[args.variant])
    print(path)
    return await anyio.to_thread.run_sync(output.open_file, path)


async def extend_cmd(args: argparse.Namespace) -> int:
    async with _session() as session:
        derived = await extend(session.studio, args.video_id, prompt=args.prompt, seconds=args.seconds)
        return await _derived(session, args, derived)


async def edit_cmd(args: argparse.Namespace) -> int:
    async with _session() as session:
        derived = await edit(session.studio, args.video_id, prompt=args.prompt)
        return await _derived(session, args, derived)


async def _derived(session: Session, args: argparse.Namespace, derived: Derived) -> int:
    output.started(args, [derived.record], derived.estimated_cost_usd, derived.estimated_seconds)
    (record,) = await _follow(session, args, [derived.record])
    output.derived(args, record, derived)
    return _exit_code([record], waited=not args.no_wait)


async def batch_cmd(args: argparse.Namespace) -> int:
    async with _session((args.jsonl,), batches=True) as session:
        batches = session.batches
        if args.follow:
            return await _follow_batch(session, args, args.follow)
        if bool(args.jsonl) == bool(args.prompt):
            raise InvalidRequest("Give a JSONL file or --prompt options (one or the other), or --follow.")
        requests = [
            BatchRequest(prompt=p, model=args.model, size=args.size, seconds=args.seconds)
            for p in args.prompt or ()
        ]
        jsonl = str(_absolute(args.jsonl)) if args.jsonl else None
        plan = await plan_batch(batches.studio, requests=requests or None, jsonl_path=jsonl)
        mode = batches.choose_mode(args.mode)
        output.batch_plan(args, plan, mode, batches.estimate_seconds(plan))
        if args.dry_run:
            return 0
        state = await batches.submit(plan, mode)
        output.batch_started(args, state)
        # Direct items are sent by this process's runner: it must stay until they are sent.
        if args.no_wait and mode == "native":
            return 0
        return await _follow_batch(session, args, state.record.local_id)


async def _follow_batch(session: Session, args: argparse.Namespace, batch_id: str) -> int:
    batches = session.batches
    with batch_bar(f"batch {batch_id[:12]}", enabled=not args.json) as bar:
        state: BatchState = await batches.status(batch_id, wait_seconds=args.timeout, on_progress=bar.update)
    output.batch_state(args, state)
    return 0 if not state.still_running and set(state.totals) <= {"completed"} else 1


def _is_local(ref: str | None) -> bool:
    return bool(ref) and "://" not in str(ref) and not str(ref).startswith("data:")


def _absolute(path: str) -> Path:
    return Path(path).expanduser().resolve()


def _has_file(record: VideoRecord, variant: str) -> bool:
    return variant in record.files and Path(record.files[variant]).is_file()


# ---- arguments -------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, waits: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print the records as JSON (no progress bars)")
    if waits:
        parser.add_argument("--no-wait", action="store_true", help="start and return at once")
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_WAIT,
            help=f"longest wait, seconds (default {DEFAULT_WAIT:g})",
        )


def _clip_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=catalog.DEFAULT_MODEL, help="sora-2 (default) or sora-2-pro")
    parser.add_argument(
        "--size", default=catalog.DEFAULT_SIZE, help=f"WIDTHxHEIGHT (default {catalog.DEFAULT_SIZE})"
    )
    parser.add_argument("--seconds", type=int, choices=SECONDS_CHOICES, default=int(catalog.DEFAULT_SECONDS))


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_commands(sub: Subparsers) -> None:
    """Add the people's commands to the `sora-mcp` parser; each sets `run` to its coroutine."""
    _add_generate(sub)
    _add_reading(sub)
    _add_derived(sub)
    _add_batch(sub)


def _add_generate(sub: Subparsers) -> None:
    gen = sub.add_parser(
        "generate", help="make a clip from a prompt and wait for it (BILLED on a remote backend)"
    )
    gen.add_argument("prompt")
    _clip_options(gen)
    gen.add_argument("--image", help="first frame: a local file, an https URL or a data: URL")
    gen.add_argument("--fit", choices=("crop", "pad", "stretch"), default="crop")
    gen.add_argument("--character", action="append", help="a character name or id (up to 2)")
    gen.add_argument("--start-from", help="a video whose last frame becomes the first frame")
    gen.add_argument("--start-from-second", type=float, help="with --start-from: that second instead")
    gen.add_argument("--variations", type=int, default=1, help="independent takes, 1–4 (each billed)")
    _common(gen)
    gen.set_defaults(run=generate_cmd)


def _add_reading(sub: Subparsers) -> None:
    lst = sub.add_parser("list", help="the registry, newest first (reads local state only)")
    lst.add_argument("--status")
    lst.add_argument("--model")
    lst.add_argument("--text", help="only prompts containing this text")
    lst.add_argument("--character")
    lst.add_argument("--batch")
    lst.add_argument("--parent", help="only videos made from this video")
    lst.add_argument("--limit", type=int, default=20)
    _common(lst, waits=False)
    lst.set_defaults(run=list_cmd)

    show = sub.add_parser("show", help="one video: fresh status, files, lineage")
    show.add_argument("video_id")
    show.add_argument("--wait", action="store_true", help="follow it until it ends")
    _common(show)
    show.set_defaults(run=show_cmd)

    opener = sub.add_parser("open", help="download if needed and open a video's file with the system viewer")
    opener.add_argument("video_id")
    opener.add_argument("--variant", choices=("video", "thumbnail", "spritesheet"), default="video")
    opener.set_defaults(run=open_cmd, json=False)


def _add_derived(sub: Subparsers) -> None:
    ext = sub.add_parser("extend", help="continue a completed video by 4–20 s (BILLED for the new seconds)")
    ext.add_argument("video_id")
    ext.add_argument("prompt", help="only what happens next")
    ext.add_argument("--seconds", type=int, choices=SECONDS_CHOICES, default=int(catalog.DEFAULT_SECONDS))
    _common(ext)
    ext.set_defaults(run=extend_cmd)

    edt = sub.add_parser("edit", help="change one thing in a completed video (BILLED like a new clip)")
    edt.add_argument("video_id")
    edt.add_argument("prompt", help="the one change, and what must stay")
    _common(edt)
    edt.set_defaults(run=edit_cmd)


def _add_batch(sub: Subparsers) -> None:
    bat = sub.add_parser("batch", help="many clips at once, from a JSONL file or --prompt options (BILLED)")
    bat.add_argument("jsonl", nargs="?", help="a JSONL file in the Batch API format")
    bat.add_argument(
        "--prompt", action="append", help="one clip per --prompt (with --model/--size/--seconds)"
    )
    _clip_options(bat)
    bat.add_argument("--mode", choices=("auto", "native", "direct"), default="auto")
    bat.add_argument("--dry-run", action="store_true", help="check and estimate only; send nothing")
    bat.add_argument("--follow", metavar="BATCH_ID", help="follow an existing batch instead")
    _common(bat)
    bat.set_defaults(run=batch_cmd)


def run(args: argparse.Namespace) -> int:
    command: Command = args.run
    return anyio.run(command, args)
