"""Progress bars for the people's commands, on stderr (stdout keeps the results, e.g. `--json`).

They are fed by the same callbacks the MCP tools turn into progress notifications
(`Studio.wait`'s and `Batches.status`'s), so a bar moves exactly when a tool's progress would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sora_mcp.batch.state import BatchState
from sora_mcp.registry.records import UNFINISHED_STATUSES, VideoRecord

_FINAL = frozenset({"completed", "failed", "unknown", "deleted"})

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _bars(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=stderr,
        disable=not enabled,
    )


class VideoBars:
    """One bar per video followed by `Studio.wait`; pass `update` as its `on_progress`."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    async def update(self, records: list[VideoRecord], _elapsed: float) -> None:
        for record in records:
            task = self._tasks.get(record.local_id)
            if task is None:
                label = (record.id or record.local_id)[:28]
                task = self._tasks[record.local_id] = self._progress.add_task(label, total=100, status="")
            done = record.status not in UNFINISHED_STATUSES
            percent = 100 if record.status == "completed" else record.progress
            self._progress.update(task, completed=percent, status=record.status)
            if done:
                self._progress.stop_task(task)


class BatchBar:
    """One bar for a batch, counting finished items; pass `update` as `Batches.status`'s callback."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None, status="")

    async def update(self, state: BatchState, _elapsed: float) -> None:
        total = max(1, len(state.items))
        finished = sum(1 for r in state.items.values() if r.status in _FINAL)
        if state.backend_counts is not None:
            finished = max(finished, state.backend_counts.completed + state.backend_counts.failed)
        totals = ", ".join(f"{count} {status}" for status, count in sorted(state.totals.items()))
        self._progress.update(self._task, total=total, completed=finished, status=totals)


@contextmanager
def video_bars(enabled: bool = True) -> Iterator[VideoBars]:
    with _bars(enabled) as progress:
        yield VideoBars(progress)


@contextmanager
def batch_bar(label: str, enabled: bool = True) -> Iterator[BatchBar]:
    with _bars(enabled) as progress:
        yield BatchBar(progress, label)
