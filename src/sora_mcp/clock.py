"""Time as a seam. Production code asks a Clock for the time and for sleeps, so tests can run
every wait instantly with `FakeClock` and never sleep for real."""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock: timestamps are compared with the API's)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock whose sleeps advance time instantly. Share one between the emulator and the
    client under test and a 20-minute render finishes in microseconds, deterministically."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        # Still yield to the event loop, as a real sleep would, so other tasks make progress.
        await anyio.lowlevel.checkpoint()
