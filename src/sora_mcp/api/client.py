"""`VideosClient`: every endpoint of the OpenAI Videos wire contract, over an injected
`httpx2.AsyncClient` (a remote base URL, or the embedded emulator through `ASGITransport`).

Reads are retried (see `retry.py`); billable POSTs never are, and a lost answer to one raises
`OutcomeUnknown`. Statuses are normalised per `BackendProfile` before `Video` models are built.
The API key only ever travels in a request header: it is masked in every error message and
left out of every repr.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from sora_mcp.api._download import Verify, download_within
from sora_mcp.api._http import FormParts, HTTPCore, form_fields, quote_id
from sora_mcp.api.capabilities import Capabilities, Capability
from sora_mcp.api.inputs import FileRef, ImageUpload, ImageURL, openrouter_body
from sora_mcp.api.models import Batch, Character, FileObject, Variant, Video, VideoDeleted, VideoList
from sora_mcp.api.profile import OPENAI, BackendProfile, detect_profile
from sora_mcp.api.retry import DEFAULT_RETRY, RetryPolicy
from sora_mcp.clock import Clock, SystemClock
from sora_mcp.errors import APIError, APIStatusError, InvalidRequest, OutcomeUnknown

__all__ = ["FileRef", "ImageURL", "ImageUpload", "VideosClient"]

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

POLL_AFTER_HEADER = "openai-poll-after-ms"


class VideosClient:
    """The Videos API as async methods returning the wire models of `api/models.py`.

    Every method raises a `sora_mcp.errors.APIError` subclass when the backend cannot be used
    as asked, and `InvalidRequest` (before sending anything) when `capabilities` says the backend
    lacks the endpoint — declared so by its profile, or shown by an earlier answer.
    """

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        api_key: str | None = None,
        profile: BackendProfile = OPENAI,
        clock: Clock | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
        content_timeout: float | None = None,
    ) -> None:
        self.profile = profile
        self.capabilities = Capabilities(profile.name, profile.capabilities)
        self.detected_profile: str | None = None
        """The profile the backend's answers revealed (see `profile.detect_profile`), if any."""
        self.last_poll_after: float | None = None
        """Seconds the last Video answer asked us to wait before polling again (None: not said).
        Shared by concurrent calls; `retrieve_video_with_hint` gives it per call."""
        self._core = HTTPCore(
            http,
            api_key=api_key,
            profile=profile,
            clock=clock or SystemClock(),
            retry=retry,
            rng=rng or random.Random(),  # noqa: S311 -- jitter, not cryptography
            content_timeout=content_timeout,
        )

    def __repr__(self) -> str:
        return f"VideosClient(base_url={str(self._core.http.base_url)!r}, profile={self.profile.name!r})"

    # --- videos -------------------------------------------------------------------------------

    async def create_video(
        self,
        *,
        prompt: str,
        model: str | None = None,
        size: str | None = None,
        seconds: int | str | None = None,
        input_reference: ImageUpload | ImageURL | FileRef | None = None,
        characters: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Video:
        """Start one billed render job. Never retried.

        JSON unless `input_reference` is an `ImageUpload` or the profile demands multipart.
        `extra` adds backend-specific fields; the named arguments win over it.

        Raises:
            OutcomeUnknown: the job may exist although no usable answer came back.
        """
        body: dict[str, Any] = dict(extra or {})
        body["prompt"] = prompt
        if model is not None:
            body["model"] = self.profile.model_prefix + model
        if size is not None:
            body["size"] = size
        if seconds is not None:
            body["seconds"] = self._encode_seconds(seconds)
        if isinstance(input_reference, ImageURL):
            body["input_reference"] = {"image_url": input_reference.url}
        elif isinstance(input_reference, FileRef):
            body["input_reference"] = {"file_id": input_reference.file_id}
        if characters:
            body["characters"] = [{"id": character} for character in characters]
        if self.profile.body_style == "openrouter":
            return await self._post_video("/videos", json_body=openrouter_body(body, input_reference))

        if isinstance(input_reference, ImageUpload) or self.profile.create_multipart_only:
            parts = form_fields(body)
            if isinstance(input_reference, ImageUpload):
                upload = input_reference
                parts.append(("input_reference", (upload.filename, upload.content, upload.mime_type)))
            return await self._post_video("/videos", files=parts)
        return await self._post_video("/videos", json_body=body)

    async def retrieve_video(self, video_id: str) -> Video:
        video, _ = await self.retrieve_video_with_hint(video_id)
        return video

    async def retrieve_video_with_hint(
        self, video_id: str, *, deadline: float | None = None
    ) -> tuple[Video, float | None]:
        """The video and the seconds its answer asked us to wait before the next poll. With a
        `deadline` (clock time), a failure whose retry would end after it is raised at once."""
        path = f"/videos/{quote_id(video_id)}"
        response = await self._core.read("GET", path, deadline=deadline)
        return self._video(response, path, billable=False), _poll_after(response)

    async def list_videos(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        order: Literal["asc", "desc"] | None = None,
    ) -> VideoList:
        """One page of videos; follow `last_id` while `has_more` (or use `iter_videos`)."""
        self.capabilities.require("list")
        params: dict[str, str | int] = {}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = limit
        if order is not None:
            params["order"] = order
        with self._learning("list"):
            response = await self._core.read("GET", "/videos", params=params)
        body = self._json(response, "/videos", billable=False)
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            body["data"] = [self._normalised(item) for item in body["data"]]
        return self._model(VideoList, body, "/videos", billable=False)

    async def iter_videos(
        self,
        *,
        order: Literal["asc", "desc"] = "desc",
        page_size: int = 100,
        max_items: int | None = None,
    ) -> AsyncIterator[Video]:
        """Every video, page by page, following the cursor; stops after `max_items`. A backend
        whose cursor does not advance ends the iteration instead of looping for ever."""
        yielded = 0
        after: str | None = None
        while max_items is None or yielded < max_items:
            page = await self.list_videos(after=after, limit=page_size, order=order)
            for video in page.data:
                if max_items is not None and yielded >= max_items:
                    return
                yield video
                yielded += 1
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or not page.data or cursor is None or cursor == after:
                return
            after = cursor

    async def delete_video(self, video_id: str) -> VideoDeleted:
        self.capabilities.require("delete")
        path = f"/videos/{quote_id(video_id)}"
        with self._learning("delete", id_in_path=True):
            response = await self._core.read("DELETE", path)
        if not response.content:
            # Some gateways answer 204 with no body; the deletion still happened.
            return VideoDeleted(id=video_id)
        return self._model(VideoDeleted, self._json(response, path, billable=False), path, billable=False)

    async def download_content(
        self,
        video_id: str,
        dest: Path,
        *,
        variant: Variant = "video",
        budget: float | None = None,
        verify: Verify | None = None,
    ) -> Path:
        """Stream one asset (MP4 video, WebP thumbnail, JPEG spritesheet) to `dest`.

        Atomic (`dest` is the complete file or untouched, no temporary left behind); a transfer
        cut, short of its declared size or failing `verify` (an MP4 that does not probe whole)
        starts over like any read. `budget` (real seconds) bounds it all, retries included: a
        per-read timeout alone lets a server dripping bytes hold it for ever. Returns `dest`.

        Raises:
            APITimeoutError: the transfer did not end within `budget`.
        """
        if variant != "video":
            self.capabilities.require("variants")
        path = f"/videos/{quote_id(video_id)}/content"
        dest = Path(dest)
        await anyio.Path(dest.parent).mkdir(parents=True, exist_ok=True)

        params = dict(self.profile.content_params) or {"variant": variant}
        return await download_within(self._core, path, params, dest, budget=budget, verify=verify)

    async def remix_video(self, video_id: str, *, prompt: str) -> Video:
        """A new billed job re-rendering `video_id` with a changed prompt. Never retried."""
        self.capabilities.require("remix")
        with self._learning("remix", id_in_path=True):
            return await self._post_video(f"/videos/{quote_id(video_id)}/remix", json_body={"prompt": prompt})

    async def edit_video(self, video_id: str, *, prompt: str) -> Video:
        """A new billed job editing `video_id` as `prompt` says. Never retried."""
        self.capabilities.require("edits")
        with self._learning("edits"):
            return await self._post_video(
                "/videos/edits", json_body={"prompt": prompt, "video": {"id": video_id}}
            )

    async def extend_video(self, video_id: str, *, prompt: str, seconds: int | str) -> Video:
        """A new billed job continuing `video_id` by `seconds`; the result's `seconds` is the
        stitched total. Never retried."""
        self.capabilities.require("extensions")
        body = {"prompt": prompt, "seconds": self._encode_seconds(seconds), "video": {"id": video_id}}
        with self._learning("extensions"):
            return await self._post_video("/videos/extensions", json_body=body)

    # --- characters ---------------------------------------------------------------------------

    async def create_character(
        self, *, name: str, video: Path | bytes, filename: str = "character.mp4", model: str | None = None
    ) -> Character:
        """Register a reusable character from a short clip (multipart). Never retried. `model`
        fills the profile's routing fields (a gateway sends the upload to that model's server)."""
        self.capabilities.require("characters")
        if isinstance(video, Path):
            content = await anyio.Path(video).read_bytes()
            filename = video.name
        else:
            content = video
        parts: FormParts = [("name", (None, name, None)), ("video", (filename, content, "video/mp4"))]
        routed = model or "sora-2"
        parts += [
            (key, (None, value.format(model=routed), None))
            for key, value in self.profile.character_fields.items()
        ]
        path = "/videos/characters"
        with self._learning("characters"):
            response = await self._core.post(path, billable=True, files=parts)
        return self._model(Character, self._json(response, path, billable=True), path, billable=True)

    async def get_character(self, character_id: str) -> Character:
        self.capabilities.require("characters")
        path = f"/videos/characters/{quote_id(character_id)}"
        response = await self._core.read("GET", path)
        return self._model(Character, self._json(response, path, billable=False), path, billable=False)

    # --- files and batches ----------------------------------------------------------------------

    async def upload_file(self, *, content: bytes, filename: str, purpose: str = "batch") -> FileObject:
        """Upload a file (a batch's JSONL input). Not billable, not retried."""
        self.capabilities.require("batches")
        mime = "application/jsonl" if filename.endswith(".jsonl") else "application/octet-stream"
        parts: FormParts = [("purpose", (None, purpose, None)), ("file", (filename, content, mime))]
        with self._learning("batches"):
            response = await self._core.post("/files", billable=False, files=parts)
        return self._model(
            FileObject, self._json(response, "/files", billable=False), "/files", billable=False
        )

    async def retrieve_file(self, file_id: str) -> FileObject:
        self.capabilities.require("batches")
        path = f"/files/{quote_id(file_id)}"
        response = await self._core.read("GET", path)
        return self._model(FileObject, self._json(response, path, billable=False), path, billable=False)

    async def file_content(self, file_id: str) -> bytes:
        """The whole content of a (small, JSONL) file such as a batch's output, with the key and
        any bearer token masked in its text."""
        self.capabilities.require("batches")
        response = await self._core.read("GET", f"/files/{quote_id(file_id)}/content")
        return self._core.redactor.text(response.content.decode("utf-8", errors="replace")).encode()

    async def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str = "/v1/videos",
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
    ) -> Batch:
        """Start a billed batch of creates. Never retried.

        Raises:
            OutcomeUnknown: the batch may exist although no usable answer came back.
        """
        self.capabilities.require("batches")
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata is not None:
            body["metadata"] = dict(metadata)
        with self._learning("batches"):
            response = await self._core.post("/batches", billable=True, json_body=body)
        return self._model(Batch, self._json(response, "/batches", billable=True), "/batches", billable=True)

    async def retrieve_batch(self, batch_id: str) -> Batch:
        self.capabilities.require("batches")
        path = f"/batches/{quote_id(batch_id)}"
        response = await self._core.read("GET", path)
        return self._model(Batch, self._json(response, path, billable=False), path, billable=False)

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Ask the backend to cancel a batch. Not billable, not retried."""
        self.capabilities.require("batches")
        path = f"/batches/{quote_id(batch_id)}/cancel"
        response = await self._core.post(path, billable=False)
        return self._model(Batch, self._json(response, path, billable=False), path, billable=False)

    # --- internals --------------------------------------------------------------------------------

    @contextmanager
    def _learning(self, capability: Capability, *, id_in_path: bool = False) -> Iterator[None]:
        """Remember that `capability` is missing when the call inside answers so (the error
        still propagates: nothing was started, and the caller decides what to do instead)."""
        try:
            yield
        except APIStatusError as exc:
            self.capabilities.learn(capability, exc, id_in_path=id_in_path)
            raise

    def _encode_seconds(self, seconds: int | str) -> int | str:
        if self.profile.seconds_encoding == "string":
            return str(seconds)
        try:
            return int(seconds)
        except ValueError:
            raise InvalidRequest(
                f"seconds must be a whole number for backend {self.profile.name!r}, got {seconds!r}.",
                param="seconds",
            ) from None

    async def _post_video(
        self, path: str, *, json_body: Mapping[str, Any] | None = None, files: FormParts | None = None
    ) -> Video:
        response = await self._core.post(path, billable=True, json_body=json_body, files=files)
        return self._video(response, path, billable=True)

    def _video(self, response: httpx2.Response, path: str, *, billable: bool) -> Video:
        self.last_poll_after = _poll_after(response)
        self._notice_profile(response)
        body = self._normalised(self._json(response, path, billable=billable))
        return self._model(Video, body, path, billable=billable)

    def _notice_profile(self, response: httpx2.Response) -> None:
        """Say once when the answers give away a backend other than the configured profile
        (LiteLLM names itself in every answer): its differences then go unhandled."""
        detected = detect_profile(response.headers)
        if detected is not None and detected != self.profile.name and self.detected_profile is None:
            log.warning(
                "the backend answers like %s but SORA_MCP_PROFILE is %r; set SORA_MCP_PROFILE=%s",
                detected,
                self.profile.name,
                detected,
            )
        self.detected_profile = detected or self.detected_profile

    def _normalised(self, body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("status"), str):
            body["status"] = self.profile.normalise_status(body["status"])
        if isinstance(body, dict) and isinstance(body.get("seconds"), int | float):
            # Model servers answer `seconds` as a number; the contract's is a string.
            body["seconds"] = str(body["seconds"])
        return body

    def _json(self, response: httpx2.Response, path: str, *, billable: bool) -> Any:
        """The body as JSON, with the key and any bearer token masked in every string of it
        (job errors, messages, codes) before anything stores or shows them."""
        try:
            return self._core.redactor.data(response.json())
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._unreadable(path, response, billable=billable, why="is not JSON") from exc

    def _model(self, model: type[M], body: Any, path: str, *, billable: bool) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise self._unreadable(path, None, billable=billable, why=f"is not a {model.__name__}") from exc

    def _unreadable(
        self, path: str, response: httpx2.Response | None, *, billable: bool, why: str
    ) -> APIError:
        request_id = response.headers.get("x-request-id") if response is not None else None
        if billable:
            return OutcomeUnknown(
                f"POST {path} was accepted but the answer {why}, so the job it started (if any) is "
                "unknown. Do not resubmit blindly: list the most recent videos first.",
                request_id=request_id,
            )
        return APIError(
            f"{path} answered with a body that {why}; is the base URL a Videos API?",
            request_id=request_id,
        )


def _poll_after(response: httpx2.Response) -> float | None:
    raw = response.headers.get(POLL_AFTER_HEADER)
    if raw is None:
        return None
    try:
        millis = float(raw)
    except ValueError:
        return None
    return max(0.0, millis / 1000.0) if math.isfinite(millis) else None
