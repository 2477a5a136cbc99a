"""The lifespan state every tool, resource and prompt reaches through its `Context`.

It lives apart from `app.py` so the modules that `build_server` registers can import it without
importing the builder back (no cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from sora_mcp.batch.service import Batches
from sora_mcp.config import Settings
from sora_mcp.studio.studio import Studio


@dataclass
class AppState:
    studio: Studio
    settings: Settings
    batches: Batches
    """Batch planning and following; its runner sends direct-mode items in the background."""
    started: anyio.Event = field(default_factory=lambda: _set(anyio.Event()))
    """Set once the session's start-up pass is done (the batch runner runs, lost requests were
    looked for); tool calls wait for it, `initialize` and the listings do not."""


def _set(event: anyio.Event) -> anyio.Event:
    event.set()
    return event
