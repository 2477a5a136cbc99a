"""What the people's commands print: short human lines, or JSON with `--json`.

The JSON is the registry's own records (`VideoRecord` as stored), so a script sees the same
fields as `list_videos`' source and as the registry on disk; notes for people go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from sora_mcp.batch.plan import BatchPlan
from sora_mcp.batch.state import BatchState
from sora_mcp.cli.progress import stderr
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.derive import Derived
from sora_mcp.studio.lineage import Link


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _video(record: VideoRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _vid(record: VideoRecord) -> str:
    return record.id or record.local_id


def _line(record: VideoRecord) -> str:
    where = record.files.get("video")
    state = f"{record.status}" + (
        f" ({record.error_code}: {record.error_message})" if record.error_code else ""
    )
    return f"{_vid(record)}  {state}  {record.seconds}s {record.size} {record.model}" + (
        f"\n  {where}" if where else ""
    )


def started(args: argparse.Namespace, records: list[VideoRecord], cost_each: float, seconds: float) -> None:
    if args.json:
        return
    for record in records:
        stderr.print(f"started {_vid(record)}: est. ${cost_each:.2f}, typically ~{seconds:g} s")


def videos(args: argparse.Namespace, records: list[VideoRecord], *, errors: Sequence[str] = ()) -> None:
    if args.json:
        _json({"videos": [_video(r) for r in records], "errors": list(errors)})
        return
    for record in records:
        print(_line(record))
    for error in errors:
        stderr.print(f"error: {error}")
    _hint_running(records)


def _hint_running(records: list[VideoRecord]) -> None:
    for record in records:
        if record.status in ("queued", "in_progress", "submitting", "pending"):
            stderr.print(f"still {record.status}: follow it with `sora-mcp show {_vid(record)} --wait`")


def video_table(args: argparse.Namespace, records: list[VideoRecord]) -> None:
    if args.json:
        _json({"videos": [_video(r) for r in records], "count": len(records)})
        return
    # Plain columns, never wrapped: people copy the ids into the next command.
    for r in records:
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        prompt = r.prompt if len(r.prompt) <= 48 else r.prompt[:47] + "…"
        print(f"{_vid(r):<56} {r.status:<11} {r.seconds:>3}s {r.size:<9} {r.relation:<9} {made}  {prompt}")
    stderr.print(f"{len(records)} video(s)")


def _link(link: Link | None) -> dict[str, Any] | None:
    return None if link is None else {"id": link.id, "relation": link.relation, "status": link.status}


def show(args: argparse.Namespace, record: VideoRecord, parent: Link | None, children: list[Link]) -> None:
    if args.json:
        _json({"video": _video(record), "parent": _link(parent), "children": [_link(c) for c in children]})
        return
    print(_line(record))
    print(f"  prompt: {record.prompt}")
    for variant, path in sorted(record.files.items()):
        if variant != "video":
            print(f"  {variant}: {path}")
    if parent is not None:
        print(f"  made from: {parent.id} ({parent.relation}, {parent.status})")
    for child in children:
        print(f"  {child.relation}: {child.id} ({child.status})")
    _hint_running([record])


def derived(args: argparse.Namespace, record: VideoRecord, made: Derived) -> None:
    budget = made.budget
    if args.json:
        _json(
            {
                "video": _video(record),
                "relation": made.relation,
                "fallback": made.fallback,
                "estimated_cost_usd": made.estimated_cost_usd,
                "extensions_left": budget.extensions_left if budget else None,
                "seconds_left": budget.seconds_left if budget else None,
            }
        )
        return
    print(_line(record))
    if made.fallback:
        stderr.print(made.fallback)
    if budget is not None:
        stderr.print(f"{budget.extensions_left} extension(s) and {budget.seconds_left} s left for this video")
    _hint_running([record])


def batch_plan(args: argparse.Namespace, plan: BatchPlan, mode: str, seconds_each: float) -> None:
    if args.json and not args.dry_run:
        return
    items = [
        {"custom_id": i.custom_id, "model": i.plan.model, "size": i.plan.size, "seconds": i.plan.seconds,
         "estimated_cost_usd": i.plan.cost_per_clip}
        for i in plan.items
    ]  # fmt: skip
    if args.json:
        _json({"dry_run": True, "mode": mode, "items": items, "estimated_total_usd": plan.total_cost})
        return
    text = (
        f"{len(items)} item(s), {mode} mode, est. ${plan.total_cost:.2f} in all, "
        f"typically ~{seconds_each:g} s each once sent"
        + ("; nothing sent (--dry-run)" if args.dry_run else "")
    )
    if args.dry_run:
        print(text)
    else:
        stderr.print(text)


def batch_started(args: argparse.Namespace, state: BatchState) -> None:
    if not args.json:
        stderr.print(f"batch {state.record.local_id} started ({state.record.mode} mode)")


def batch_state(args: argparse.Namespace, state: BatchState) -> None:
    record = state.record
    if args.json:
        _json(
            {
                "batch_id": record.local_id,
                "backend_batch_id": record.id,
                "mode": record.mode,
                "status": record.status,
                "still_running": state.still_running,
                "totals": state.totals,
                "items": {cid: _video(r) for cid, r in state.items.items()},
                "problems": state.problems,
            }
        )
        return
    print(f"batch {record.local_id} ({record.mode}): {record.status}")
    for custom_id, item in state.items.items():
        print(f"[{custom_id}] " + _line(item))
    for problem in state.problems:
        stderr.print(f"problem: {problem}")
    if state.still_running:
        stderr.print(f"still running: follow it with `sora-mcp batch --follow {record.local_id}`")


def open_file(path: Path) -> int:
    """Open `path` with the system's viewer; 1 (with the path already printed) when there is none."""
    command = _opener()
    if command == "startfile":
        os.startfile(path)  # type: ignore[attr-defined,unused-ignore]  # noqa: S606 - Windows only
        return 0
    if command is None:
        stderr.print("No program to open files was found (xdg-open / open); the file is at the path above.")
        return 1
    # xdg-open and open hand the file to the viewer and return; the viewer is not waited for.
    done = subprocess.run([command, str(path)], check=False, timeout=60)  # noqa: S603
    if done.returncode != 0:
        stderr.print(f"{command} could not open it ({done.returncode}); the file is at the path above.")
        return 1
    return 0


def _opener() -> str | Literal["startfile"] | None:
    if sys.platform == "win32":
        return "startfile"
    return shutil.which("open" if sys.platform == "darwin" else "xdg-open")
