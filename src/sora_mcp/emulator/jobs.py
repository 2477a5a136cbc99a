"""Video jobs of every kind (create, remix, edit, extension), made and read against the clock.

`Jobs` holds what the routes share: the store, the clock, the simulated speed and the asset
renderer. It turns validated requests into `VideoRecord`s and reads them back as wire objects,
and it owns the rules that need more than one record (source must be completed, extension
limits per lineage).
"""

from __future__ import annotations

import time
from typing import Literal

from starlette.responses import JSONResponse

from sora_mcp import catalog
from sora_mcp.clock import Clock
from sora_mcp.emulator.assets import Assets
from sora_mcp.emulator.envelope import bad_request, not_found
from sora_mcp.emulator.faults import prompt_failure
from sora_mcp.emulator.store import EmulatorStore, Segment, VideoRecord, new_id, video_json, video_phase
from sora_mcp.emulator.validation import CreateRequest
from sora_mcp.media.video import MediaInfo

POLL_AFTER_HEADER = "openai-poll-after-ms"
_POLL_MIN_MS, _POLL_MAX_MS = 50, 10_000


class Jobs:
    """The emulator's job rules over one store and one clock."""

    def __init__(self, store: EmulatorStore, clock: Clock, *, speed: float, fps: int) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.store = store
        self.clock = clock
        self.speed = speed
        self.assets = Assets(store, fps=fps)

    def now(self) -> float:
        return self.clock.now()

    # -- reading -----------------------------------------------------------------------------

    def video(self, video_id: str, *, param: str | None = None) -> VideoRecord:
        """The record, or WireError 404."""
        record = self.store.get_video(video_id)
        if record is None:
            raise not_found("video", video_id, param=param)
        return record

    def completed_source(self, video_id: str, *, action: str, param: str | None) -> VideoRecord:
        """A source video for remix/edit/extension: it must exist (404) and be completed (400)."""
        record = self.video(video_id, param=param)
        status = video_phase(record, self.now()).status
        if status != "completed":
            advice = "Make a new video instead." if status == "failed" else "Poll it until it is 'completed'."
            raise bad_request(
                f"Video '{video_id}' is {status}; only a completed video can be {action}. {advice}",
                param=param,
                code="invalid_video_state",
            )
        return record

    def video_response(self, record: VideoRecord) -> JSONResponse:
        """The Video object with the poll-after hint the SDK's poll loop honours."""
        return JSONResponse(
            video_json(record, self.now()), headers={POLL_AFTER_HEADER: str(self.poll_after_ms(record))}
        )

    @staticmethod
    def poll_after_ms(record: VideoRecord) -> int:
        # About ten polls per render, within sane bounds.
        return int(min(_POLL_MAX_MS, max(_POLL_MIN_MS, record.render_seconds * 1000 / 10)))

    # -- making ------------------------------------------------------------------------------

    def create(self, request: CreateRequest, *, created_at: float | None = None) -> VideoRecord:
        video_id = new_id("video_")
        inputs: list[str] = []
        if request.first_frame is not None:
            inputs.append(f"{video_id}.reference")
            self.store.save_input(inputs[0], request.first_frame)
        segment = Segment(
            prompt=request.prompt,
            seconds=float(request.seconds),
            video_id=video_id,
            characters=list(request.characters),
            first_frame=inputs[0] if inputs else None,
        )
        return self._start(
            video_id=video_id,
            kind="create",
            model=request.model,
            prompt=request.prompt,
            size=request.size,
            seconds=request.seconds,
            segments=[segment],
            inputs=inputs,
            render_basis=float(request.seconds),
            created_at=created_at,
        )

    def remix(
        self, source: VideoRecord, prompt: str, *, kind: Literal["remix", "edit"] = "remix"
    ) -> VideoRecord:
        """Remix or edit of a stored video: the source's content, visibly changed by `prompt`."""
        video_id = new_id("video_")
        changed = {"note": prompt, "video_id": video_id}
        # An uploaded stretch (from an extension of an upload) is kept as is: it cannot be re-tinted.
        segments = [s if s.upload is not None else s.model_copy(update=changed) for s in source.segments]
        return self._start(
            video_id=video_id,
            kind=kind,
            model=source.model,
            prompt=prompt,
            size=source.size,
            seconds=source.seconds,
            segments=segments,
            remixed_from_video_id=source.id if kind == "remix" else None,
            source_video_id=source.id,
            render_basis=_total_seconds(source),
        )

    def edit_upload(self, prompt: str, info: MediaInfo, first_frame: bytes) -> VideoRecord:
        """Edit of an uploaded video: a clip of the same size and length, starting on its first frame."""
        video_id = new_id("video_")
        name = f"{video_id}.source-frame"
        self.store.save_input(name, first_frame)
        seconds = max(1, round(info.seconds))
        segment = Segment(
            prompt=prompt, seconds=float(seconds), video_id=video_id, note=prompt, first_frame=name
        )
        return self._start(
            video_id=video_id,
            kind="edit",
            model=catalog.DEFAULT_MODEL,
            prompt=prompt,
            size=upload_size(info),
            seconds=str(seconds),
            segments=[segment],
            inputs=[name],
            render_basis=float(seconds),
        )

    def extend(self, source: VideoRecord, prompt: str, seconds: str) -> VideoRecord:
        """A new video: the source's file followed by a new segment; `seconds` is the total."""
        root = source.lineage_root or source.id
        self._check_extension_limits(root, _total_seconds(source), seconds)
        video_id = new_id("video_")
        segment = Segment(prompt=prompt, seconds=float(seconds), video_id=video_id, note=None)
        total = _total_seconds(source) + float(seconds)
        return self._start(
            video_id=video_id,
            kind="extension",
            model=source.model,
            prompt=prompt,
            size=source.size,
            seconds=_seconds_text(total),
            segments=[*source.segments, segment],
            source_video_id=source.id,
            lineage_root=root,
            render_basis=float(seconds),
        )

    def extend_upload(
        self, content: bytes, info: MediaInfo, first_frame: bytes, prompt: str, seconds: str
    ) -> VideoRecord:
        """Extension of an uploaded video: the upload as is, then a new segment at its frame
        rate. An upload at a fractional rate (29.97 fps) cannot be joined without re-timing, so
        a rendered stand-in starting on its first frame takes its place."""
        self._check_extension_limits(None, info.seconds, seconds)
        video_id = new_id("video_")
        fps = round(info.fps)
        if abs(info.fps - fps) < 1e-3:
            name = f"{video_id}.source.mp4"
            self.store.save_input(name, content)
            head = Segment(prompt="uploaded video", seconds=info.seconds, video_id=video_id, upload=name)
            tail = Segment(prompt=prompt, seconds=float(seconds), video_id=video_id, fps=fps)
        else:
            name = f"{video_id}.source-frame"
            self.store.save_input(name, first_frame)
            head = Segment(prompt="uploaded video", seconds=info.seconds, video_id=video_id, first_frame=name)
            tail = Segment(prompt=prompt, seconds=float(seconds), video_id=video_id)
        return self._start(
            video_id=video_id,
            kind="extension",
            model=catalog.DEFAULT_MODEL,
            prompt=prompt,
            size=upload_size(info),
            seconds=_seconds_text(info.seconds + float(seconds)),
            segments=[head, tail],
            inputs=[name],
            lineage_root=video_id,
            render_basis=float(seconds),
        )

    def _check_extension_limits(self, root: str | None, source_seconds: float, seconds: str) -> None:
        if root is not None:
            made = sum(
                1 for r in self.store.list_videos() if r.kind == "extension" and r.lineage_root == root
            )
            if made >= catalog.EXTENSIONS_PER_VIDEO:
                raise bad_request(
                    f"Video '{root}' already has {made} extensions; at most "
                    f"{catalog.EXTENSIONS_PER_VIDEO} are allowed per source video.",
                    param="video",
                    code="extension_limit_reached",
                )
        total = source_seconds + float(seconds)
        if total > catalog.EXTENDED_MAX_TOTAL_SECONDS:
            raise bad_request(
                f"Extending a {_seconds_text(source_seconds)} s video by {seconds} s would make it "
                f"{_seconds_text(total)} s; an extended video can be at most "
                f"{catalog.EXTENDED_MAX_TOTAL_SECONDS} s. Choose a shorter extension.",
                param="seconds",
                code="extension_too_long",
            )

    def _start(
        self,
        *,
        video_id: str,
        kind: Literal["create", "remix", "edit", "extension"],
        model: str,
        prompt: str,
        size: str,
        seconds: str,
        segments: list[Segment],
        render_basis: float,
        inputs: list[str] | None = None,
        remixed_from_video_id: str | None = None,
        source_video_id: str | None = None,
        lineage_root: str | None = None,
        created_at: float | None = None,
    ) -> VideoRecord:
        failure = prompt_failure(prompt)
        now = self.now() if created_at is None else created_at
        record = VideoRecord.model_validate(
            {
                "id": video_id,
                "kind": kind,
                "model": model,
                "prompt": prompt,
                "size": size,
                "seconds": seconds,
                "created_at": now,
                "order_key": _order_key(),
                "render_seconds": catalog.estimate_render_seconds(model, round(render_basis)) / self.speed,
                "remixed_from_video_id": remixed_from_video_id,
                "source_video_id": source_video_id,
                "lineage_root": lineage_root,
                "fail_code": failure[0] if failure else None,
                "fail_message": failure[1] if failure else None,
                "segments": [s.model_dump() for s in segments],
                "inputs": inputs or [],
            }
        )
        self.store.save_video(record)
        return record


def upload_size(info: MediaInfo) -> str:
    """The wire `size` of an uploaded source video. Raises WireError 400 if no model makes it."""
    size = f"{info.width}x{info.height}"
    known = sorted({s for spec in catalog.MODELS.values() for s in spec.sizes})
    if size not in known:
        raise bad_request(
            f"The uploaded video is {size}; source videos must be one of the supported sizes: "
            f"{', '.join(known)}.",
            param="video",
            code="invalid_video_dimensions",
        )
    return size


def _total_seconds(record: VideoRecord) -> float:
    return sum(s.seconds for s in record.segments)


def _seconds_text(value: float) -> str:
    return str(round(value))


def _order_key() -> int:
    return time.time_ns()
