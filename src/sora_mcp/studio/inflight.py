"""Billable requests this process is sending, and the news a lost request waits for.

A request without an id is either in flight (its answer may still arrive) or lost (reconciled
by listing). Lost requests with the same prompt as one in flight are not matched until it
settles (`reconcile.py`), so whoever waits on them — a `get_video` with a wait, the background
reconciler — waits for the news that some request settled, then looks again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class InFlight:
    """The requests being sent here (local id → set when its answer is in) and a news event set
    whenever one settles or an answer is lost."""

    def __init__(self) -> None:
        self._sending: dict[str, anyio.Event] = {}
        # Made on first use: an Event belongs to the running event loop.
        self._news: anyio.Event | None = None

    @contextmanager
    def sending(self, local_id: str) -> Iterator[None]:
        settled = anyio.Event()
        self._sending[local_id] = settled
        try:
            yield
        finally:
            del self._sending[local_id]
            settled.set()
            self.announce()

    def settled(self, local_id: str) -> anyio.Event | None:
        """The event set when the request `local_id` settles; None if it is not sent here."""
        return self._sending.get(local_id)

    def announce(self) -> None:
        """Wake everyone waiting for news (a request settled, an answer was lost)."""
        if self._news is not None:
            self._news.set()
        self._news = None

    @property
    def news(self) -> anyio.Event:
        """The event the next announcement sets; take it before looking, wait on it after."""
        if self._news is None:
            self._news = anyio.Event()
        return self._news
