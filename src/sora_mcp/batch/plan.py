"""Planning a batch: every item checked, and its image prepared, before anything is sent.

Items come as a list of requests (a tool argument) or as a JSONL file in the Batch API's format.
Each one goes through the same checks as `generate` (`service.plan_clip`); custom ids default to
item-1, item-2, … by position and must be unique. Every problem is collected, named by its item
and custom_id, and reported in one `InvalidRequest`, so a model fixes them all in one go.
"""

from __future__ import annotations

import base64
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from sora_mcp import catalog
from sora_mcp.batch.jsonl import CUSTOM_ID_MAX_CHARS, RawItem, parse_requests
from sora_mcp.errors import InvalidRequest
from sora_mcp.files import confine
from sora_mcp.media.images import PreparedImage
from sora_mcp.studio.studio import ClipPlan, Studio, plan_clip

MAX_ITEMS = 500
MAX_INPUT_BYTES = 100 * 1024 * 1024


class BatchRequest(BaseModel):
    """One clip of a batch."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="The shot: subject, action, setting, camera, lighting. 1–32000 chars.")
    model: str = Field(default=catalog.DEFAULT_MODEL, description="sora-2 or sora-2-pro.")
    size: str = Field(
        default=catalog.DEFAULT_SIZE, description="WIDTHxHEIGHT, e.g. 720x1280 (portrait) or 1280x720."
    )
    seconds: int = Field(default=int(catalog.DEFAULT_SECONDS), description="4, 8, 12, 16 or 20.")
    image: str | None = Field(
        default=None,
        description="Optional first frame (path, https or data: URL), cropped to size. No human faces.",
    )
    custom_id: str | None = Field(
        default=None,
        description="Unique name keying the results (default item-1, item-2, …).",
    )


@dataclass(frozen=True)
class PlannedItem:
    """A checked batch item, ready to send."""

    custom_id: str
    plan: ClipPlan
    file_id: str | None = None
    """An image reference already uploaded to the backend (passed through unchecked)."""

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /videos` for this item (seconds as a string, as the wire wants;
        a prepared image inlined as a data URL, since batches take JSON bodies only)."""
        body: dict[str, Any] = {
            "prompt": self.plan.prompt,
            "model": self.plan.model,
            "size": self.plan.size,
            "seconds": str(self.plan.seconds),
        }
        if self.plan.image is not None:
            body["input_reference"] = {"image_url": _data_url(self.plan.image)}
        elif self.file_id is not None:
            body["input_reference"] = {"file_id": self.file_id}
        return body


@dataclass(frozen=True)
class BatchPlan:
    items: tuple[PlannedItem, ...]

    @property
    def total_cost(self) -> float:
        """Estimated USD for every item, from the catalogue's list prices."""
        return round(sum(item.plan.cost_per_clip for item in self.items), 2)


async def plan_batch(
    studio: Studio, *, requests: Sequence[BatchRequest] | None = None, jsonl_path: str | None = None
) -> BatchPlan:
    """Check every item of a batch given as `requests` or as a JSONL file at `jsonl_path` (confined
    to the output folder and the configured input folders), preparing image references.

    Raises:
        InvalidRequest: listing every problem, each with its item (or line) and custom_id.
    """
    if (requests is None) == (jsonl_path is None):
        raise InvalidRequest(
            "Give either requests (a list) or jsonl_path (a JSONL file), not both.",
            code="conflicting_arguments",
        )
    problems: list[str] = []
    if requests is not None:
        raw = [
            RawItem(
                where=f"item {index}",
                custom_id=request.custom_id,
                prompt=request.prompt,
                model=request.model,
                size=request.size,
                seconds=request.seconds,
                image=request.image,
            )
            for index, request in enumerate(requests, start=1)
        ]
    else:
        assert jsonl_path is not None
        defaults = {
            "model": catalog.DEFAULT_MODEL,
            "size": catalog.DEFAULT_SIZE,
            "seconds": catalog.DEFAULT_SECONDS,
        }
        raw, problems = parse_requests(await _read_input(studio, jsonl_path), defaults=defaults)
    if not raw and not problems:
        problems.append("the batch holds no requests.")
    if len(raw) > MAX_ITEMS:
        problems.append(f"{len(raw)} requests; at most {MAX_ITEMS} fit in one batch — split it.")
    items = await _check_items(studio, raw, problems)
    if problems:
        listed = "\n".join(f"- {problem}" for problem in problems)
        raise InvalidRequest(
            f"{len(problems)} problem(s) in the batch; nothing was sent. Fix them all and call batch "
            f"again:\n{listed}",
            code="invalid_items",
        )
    return BatchPlan(items=tuple(items))


async def _read_input(studio: Studio, jsonl_path: str) -> str:
    settings = studio.settings
    path = anyio.Path(confine(jsonl_path, [settings.output_dir, *settings.input_roots]))
    try:
        info = await path.stat()
        # A FIFO or device would block the read (a FIFO until some writer comes): refuse it.
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRequest(f"{path} is not a regular file; give a JSONL text file.", param="jsonl_path")
        if info.st_size > MAX_INPUT_BYTES:
            raise InvalidRequest(
                f"{path} is larger than {MAX_INPUT_BYTES} bytes; split the batch.", param="jsonl_path"
            )
        return await path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"Cannot read the JSONL file {path}: {exc}. Give a UTF-8 text file inside "
            f"{settings.output_dir} (or a configured input folder).",
            param="jsonl_path",
        ) from exc


async def _check_items(studio: Studio, raw: Sequence[RawItem], problems: list[str]) -> list[PlannedItem]:
    custom_ids = [item.custom_id or f"item-{index}" for index, item in enumerate(raw, start=1)]
    for custom_id, count in Counter(custom_ids).items():
        if count > 1:
            problems.append(f"custom_id {custom_id!r} is used {count} times; each must be unique.")
    planned: list[PlannedItem] = []
    for item, custom_id in zip(raw, custom_ids, strict=True):
        label = f"{item.where} ({custom_id!r})"
        if not custom_id.strip() or len(custom_id) > CUSTOM_ID_MAX_CHARS or not custom_id.isprintable():
            problems.append(f"{label}: custom_id must be 1–{CUSTOM_ID_MAX_CHARS} printable characters.")
            continue
        if item.seconds is None:
            problems.append(f"{label}: seconds must be one of {', '.join(catalog.SECONDS)}.")
            continue
        try:
            plan = plan_clip(prompt=item.prompt, model=item.model, size=item.size, seconds=item.seconds)
            if item.image is not None:
                plan = replace(plan, image=await studio.prepare_image(item.image, item.size))
        except InvalidRequest as exc:
            problems.append(f"{label}: {exc}")
            continue
        planned.append(PlannedItem(custom_id=custom_id, plan=plan, file_id=item.file_id))
    return planned


def _data_url(image: PreparedImage) -> str:
    return f"data:{image.mime_type};base64,{base64.b64encode(image.content).decode('ascii')}"
