"""Finish what an earlier process left running: after a crash or a restart, lost requests are
found and unfinished jobs are followed to the end and downloaded, without a client asking.

Jobs are paid for whether or not anyone is still listening, and their files expire on the
backend (`expires_at`); so at start the registry is read and every unfinished video in it is
taken care of (and it is swept again while the server runs, below):

- 'pending': a direct batch item waiting in the local queue. The `BatchRunner` sends it; left
  alone here.
- 'unknown', or 'submitting' for longer than any request can take: the request's answer was
  lost. Its job is looked for in the backend's list (`reconcile.py`) before the server takes its
  first call (within `STARTUP_RECONCILE_SECONDS`), so the first answers already show it.
- 'submitting' more recently: another process sharing the registry may still be sending it. It
  is looked at again once it is stale, then looked for like the above.
- 'queued' / 'in_progress' with an id: followed until it ends (at most `FOLLOW_TIMEOUT_SECONDS`,
  polling as the backend asks), and downloaded when it completes. A few at a time.
- 'queued' without an id: an item of a native batch, whose id arrives with the batch's results
  (`get_batch`); nothing to follow here.
- 'completed' without its file (a server killed between saving the completion and the end of
  the download): downloaded again. The temporary files killed downloads left are swept first.

Fleet: every server sharing the registry runs a resumer, and each video is followed by one of
them. A resumer claims a video (`FleetClaims`, "follow:<local_id>") before following it; the
others leave it alone, and take it over only if that claim lapses (its server died). Lost
requests are looked for under one claim per backend (`LostRequests`), so two servers never
match jobs to them at once.

After that, `watch` keeps at it for as long as the server runs:

- whenever an answer is lost or a request settles (a lost request with the same prompt may have
  been waiting for it), the lost requests of the registry are looked for again;
- every `sweep_every` seconds (the claim lease by default, `SORA_MCP_BATCH_LEASE_SECONDS`) the
  registry is swept, so what a dead server of the fleet left — or what no server follows yet —
  is taken over without a restart: lost requests are looked for (under the per-backend claim),
  then every unfinished video with an id that no server holds is claimed and followed, and every
  recent completed video without its file is claimed and fetched (once per process: a file that
  cannot be fetched is left to `get_video` and the next start). A video claimed elsewhere is
  left alone; the next sweep asks again, so it is taken over once that claim lapses.

Money: nothing here sends a billable request — lost requests are matched by listing, jobs are
followed with GETs. Time: `run` handles the records found at start and returns when they are
done; a sweep that finds nothing sleeps until the next one. Waits for a claim and sweeps sleep on
the claims' clock (the wall clock lapses are measured on), polls on the studio's; tests' fake
clocks make both instant. At most `concurrency` videos are followed at once
(start and sweeps together); cancelling stops polling at once and never the jobs themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus

from sora_mcp.errors import RegistryError, SoraError
from sora_mcp.files import sweep_orphans
from sora_mcp.registry.records import UNFINISHED_STATUSES, VideoRecord
from sora_mcp.studio.claims import POLL_FRACTION, FleetClaims
from sora_mcp.studio.downloads import has_file
from sora_mcp.studio.reconcile import STALE_SUBMITTING_SECONDS, needs_reconciling
from sora_mcp.studio.studio import Studio

__all__ = [
    "DEFAULT_CONCURRENCY",
    "FOLLOW_TIMEOUT_SECONDS",
    "STARTUP_RECONCILE_SECONDS",
    "SWEEP_FILES_WITHIN_SECONDS",
    "Resumer",
]

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
"""How many unfinished jobs are followed at once."""
FOLLOW_TIMEOUT_SECONDS = 3 * 3600.0
"""Longest a job is followed (the slowest renders take tens of minutes); a job still running
after that is left to `get_video` or to the next start."""
STARTUP_RECONCILE_SECONDS = 10.0
"""Longest (real seconds) the first tool calls wait for lost requests to be looked for (the
server answers `initialize` and `tools/list` at once); those not reached by then are looked for
in the background."""
SWEEP_FILES_WITHIN_SECONDS = 24 * 3600.0
"""A sweep fetches the missing files of videos created this recently (the backend's files expire
within about a day); older ones are fetched by `get_video` or at the next start."""
# A little past the staleness threshold, so the record is stale when looked at again.
_STALE_MARGIN = 1.0
# Real seconds the background reconciler lets news gather before it looks.
_NEWS_SETTLE_SECONDS = 0.05
_MANY = 1_000_000


class Resumer:
    """Resumes the unfinished videos of the registry at start (`run`), then takes over what no
    server of the fleet holds while the server runs (`watch`); run both in a task group."""

    def __init__(
        self,
        studio: Studio,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        follow_timeout: float = FOLLOW_TIMEOUT_SECONDS,
        sweep_every: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.studio = studio
        self.follow_timeout = follow_timeout
        self.claims: FleetClaims = studio.claims
        # Of the order of the lease: a dead server's video is taken over within about two leases.
        self.sweep_every = sweep_every if sweep_every is not None else self.claims.lease_seconds
        if self.sweep_every <= 0:
            raise ValueError(f"sweep_every must be positive, got {self.sweep_every}")
        self.sweeps = 0
        """Sweeps done so far (what the logs and the tests can tell)."""
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._looked_for: set[str] = set()  # lost at start, looked for once already
        self._handling: set[str] = set()  # local ids taken care of here right now
        self._fetched: set[str] = set()  # completed ones whose file was fetched (or tried) here

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Look for the lost requests found at start, report started, then follow every
        unfinished job found at start until each ends; returns when all are done.

        One video's trouble (backend down, job gone) is logged and does not stop the others;
        a video not finished here is still finished by `get_video` or at the next start.
        """
        swept = await anyio.to_thread.run_sync(sweep_orphans, self.studio.settings.output_dir)
        if swept:
            log.info("removed %d temporary file(s) left by interrupted downloads", len(swept))
        try:
            found = [r for r in self.studio.registry.unfinished_videos() if r.status != "pending"]
            found += self._missing_files()
        except RegistryError:
            log.exception("could not read the unfinished videos; they resume on get_video")
            task_status.started()
            return
        now = self.studio.clock.now()
        lost = [r.local_id for r in found if needs_reconciling(r, now)]
        with anyio.move_on_after(STARTUP_RECONCILE_SECONDS):
            for local_id in lost:
                await self._look_for(local_id)
        if found:
            log.info("resuming %d unfinished video(s)", len(found))
        self._handling.update(r.local_id for r in found)
        self._fetched.update(r.local_id for r in found if r.status == "completed")
        task_status.started()
        async with anyio.create_task_group() as group:
            for record in found:
                group.start_soon(self._take, record)

    async def watch(self) -> None:
        """Until cancelled: look for the lost requests of the registry each time there is news
        (an answer lost, a request settled), and sweep the registry every `sweep_every` seconds.
        Never sends a billable request."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._on_news)
            await self._sweep_forever(group)

    async def _on_news(self) -> None:
        while True:
            await self.studio.lost.in_flight.news.wait()
            # Let a burst of settling requests pass before one look covers them all.
            await anyio.sleep(_NEWS_SETTLE_SECONDS)
            try:
                await self.studio.lost.reconcile_all()
            except SoraError as exc:
                log.warning("could not look for lost requests: %s", exc)

    async def _sweep_forever(self, group: TaskGroup) -> None:
        """Every `sweep_every` seconds, take over in `group` what nobody holds."""
        while True:
            # On the claims' clock, the one lapses are measured on (the wall clock in a server):
            # a loop on the studio's clock would run a test's shared fake time away.
            await self.claims.clock.sleep(self.sweep_every)
            try:
                owed = await self._sweep()
            except SoraError as exc:
                log.warning("could not sweep the registry (the next sweep tries again): %s", exc)
                owed = []
            self.sweeps += 1
            if owed:
                log.info("taking over %d video(s) no server follows", len(owed))
            for record in owed:
                self._handling.add(record.local_id)
                group.start_soon(self._take_over, record)

    async def _sweep(self) -> list[VideoRecord]:
        """Look for the lost requests, then list what is owed and not taken care of here:
        unfinished videos with an id, and recent completed ones without their file."""
        registry = self.studio.registry
        unfinished = registry.unfinished_videos()
        now = self.studio.clock.now()
        lost = any(needs_reconciling(r, now) for r in unfinished)
        if lost and self.studio.client.capabilities.has("list"):
            await self.studio.lost.reconcile_all(unfinished)  # lists, under the backend's claim
            unfinished = registry.unfinished_videos()
        owed = [r for r in unfinished if r.id is not None and r.status != "pending"]
        here = self.studio.settings.output_dir
        recent = registry.videos_since(now - SWEEP_FILES_WITHIN_SECONDS)
        owed += [
            r
            for r in recent
            if r.status == "completed"
            and not has_file(r)
            and _kept_here_or_nowhere(r, here)
            and r.local_id not in self._fetched
        ]
        return [
            r
            for r in owed
            if r.local_id not in self._handling and not self.claims.holds(f"follow:{r.local_id}")
        ]

    async def _take_over(self, record: VideoRecord) -> None:
        """Resume `record` if no server holds it (one try: while another does, the next sweep
        asks again)."""
        work = f"follow:{record.local_id}"
        try:
            async with self._limiter:
                try:
                    if not self.claims.claim(work):
                        return
                except RegistryError:
                    log.exception("could not claim video %s; the next sweep tries again", record.local_id)
                    return
                try:
                    if record.status == "completed":
                        self._fetched.add(record.local_id)
                    await self._resume(record, waited=True)
                finally:
                    self.claims.release(work)
        finally:
            self._handling.discard(record.local_id)

    def _missing_files(self) -> list[VideoRecord]:
        """Completed videos without their MP4 here — not those whose file another server of the
        fleet keeps in its own output folder."""
        here = self.studio.settings.output_dir
        completed = self.studio.registry.list_videos(status="completed", limit=_MANY)
        return [r for r in completed if not has_file(r) and _kept_here_or_nowhere(r, here)]

    async def _look_for(self, local_id: str) -> None:
        record = self.studio.registry.get_video(local_id)
        if record is None:
            return
        try:
            await self.studio.reconcile(record)
        except SoraError as exc:
            log.warning("could not look for the job of lost request %s: %s", local_id, exc)
        self._looked_for.add(local_id)

    async def _take(self, record: VideoRecord) -> None:
        """Resume `record` once this server holds its claim. While another holds it, wait
        (outside the limiter) and take over only if its claim lapses; once it is done, stop."""
        if (
            record.id is None
            and record.status == "submitting"
            and not needs_reconciling(record, self.studio.clock.now())
        ):
            await self._until_stale(record)  # another server may still be sending it
        try:
            await self._follow_claimed(record)
        finally:
            self._handling.discard(record.local_id)

    async def _follow_claimed(self, record: VideoRecord) -> None:
        work = f"follow:{record.local_id}"
        waited = False
        while True:
            async with self._limiter:
                try:
                    won = self.claims.claim(work)
                except RegistryError:
                    log.exception("could not claim video %s; it resumes on get_video", record.local_id)
                    return
                if won:
                    try:
                        await self._resume(record, waited=waited)
                    finally:
                        self.claims.release(work)
                    return
            waited = True
            await self.claims.clock.sleep(self.claims.lease_seconds / POLL_FRACTION)
            try:
                latest = self.studio.registry.get_video(record.local_id)
            except RegistryError:
                log.exception("could not read video %s; it resumes on get_video", record.local_id)
                return
            if latest is None or not _owed_work(latest):
                return  # done by the server that held it

    async def _resume(self, record: VideoRecord, *, waited: bool = False) -> None:
        studio = self.studio
        record = studio.registry.get_video(record.local_id) or record  # it may have been found
        if waited and not _owed_work(record):
            return
        if record.id is None and (record.local_id in self._looked_for or waited):
            return  # not found at start (here or elsewhere); get_video looks again when asked
        try:
            # Looks for a lost job, notes a vanished one, downloads one that completed while
            # nobody was watching.
            latest = await studio.refresh(record.local_id)
            if latest.id is not None and latest.status in UNFINISHED_STATUSES:
                await studio.wait([latest.local_id], timeout=self.follow_timeout, for_client=False)
        except SoraError as exc:
            log.warning("could not resume video %s: %s", record.id or record.local_id, exc)

    async def _until_stale(self, record: VideoRecord) -> None:
        clock = self.studio.clock
        delay = record.updated_at + STALE_SUBMITTING_SECONDS + _STALE_MARGIN - clock.now()
        if delay > 0:
            await clock.sleep(delay)


def _owed_work(record: VideoRecord) -> bool:
    """Still to follow, or completed without its file."""
    return record.status in UNFINISHED_STATUSES or (record.status == "completed" and not has_file(record))


def _kept_here_or_nowhere(record: VideoRecord, output_dir: Path) -> bool:
    path = record.files.get("video")
    return path is None or Path(path).is_relative_to(output_dir)
