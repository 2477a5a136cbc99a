"""Claims on background work in the shared registry: what one server of a fleet does while the
others leave it alone — following a job left running, looking for the jobs of lost requests.

A client's wait takes the same claim on the videos it follows (`taking`) and keeps it a while
after (`FOLLOW_GRACE_LEASES` leases: the client's next call usually follows), so while a client
follows a job on one server — one wait after another — the others' sweeps, and this server's own,
leave it alone instead of polling and downloading it a second time. A client that stops asking
lets the claim go; then a sweep takes the job over.

A claim is a registry row (`claim_work`) naming this process and a lapse time; the session's
heartbeat renews every claim this process holds, so a claim outlives any one piece of work only
while its process is alive. A server that dies stops renewing: once its claims lapse, another
server takes the work over. Lapse times compare wall-clock seconds across hosts, whatever clock
the rest of the studio runs on (tests' fake clocks included).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sora_mcp.clock import Clock, SystemClock
from sora_mcp.errors import RegistryError
from sora_mcp.registry.interface import RegistryStore

log = logging.getLogger(__name__)

POLL_FRACTION = 4
"""A claim held elsewhere is asked for again every `lease_seconds / POLL_FRACTION`."""
FOLLOW_GRACE_LEASES = 2
"""A client's wait keeps its claim this many leases after it ends."""


class FleetClaims:
    """This process's claims on background work (one owner id for all of them)."""

    def __init__(self, registry: RegistryStore, *, lease_seconds: float, clock: Clock | None = None) -> None:
        self.registry = registry
        self.lease_seconds = lease_seconds
        self.clock = clock or SystemClock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, int] = {}  # work → how many holds of it here
        self._later: list[tuple[float, str]] = []  # (when, work): holds to drop then

    def claim(self, work: str) -> bool:
        """Take (or keep) the claim on `work`; False while another process holds it.

        Raises:
            RegistryError: the registry could not be read or written.
        """
        won = self.registry.claim_work(
            work, owner=self.owner, lease_now=self.clock.now(), lease_seconds=self.lease_seconds
        )
        if won:
            self._held[work] = self._held.get(work, 0) + 1
        return won

    def release(self, work: str) -> None:
        """Drop one hold of `work`; the claim goes with the last (a failure leaves it to lapse)."""
        left = self._held.get(work, 0) - 1
        if left > 0:
            self._held[work] = left
            return
        self._held.pop(work, None)
        try:
            self.registry.release_work(work, self.owner)
        except RegistryError:
            log.exception("could not release the claim on %s; it lapses", work)

    @asynccontextmanager
    async def holding(self, work: str, *, poll: float) -> AsyncIterator[None]:
        """Wait until this process holds `work` (another's claim ends when it is released or
        lapses), asking every `poll` seconds, then keep it for the block. Bound the wait with
        a cancel scope.

        Raises:
            RegistryError: the registry could not be read or written.
        """
        while not self.claim(work):
            await self.clock.sleep(poll)
        try:
            yield
        finally:
            self.release(work)

    @contextmanager
    def taking(self, work: str, *, keep_for: float = 0.0) -> Iterator[bool]:
        """Take the claim on `work` for the block if no other process holds it (one try, never a
        wait), and keep it `keep_for` seconds after (`release_later`); yields whether it is held
        here. A registry that cannot be written yields False: the work is still done, only
        without telling the fleet."""
        try:
            held = self.claim(work)
        except RegistryError:
            log.exception("could not claim %s; doing it unclaimed", work)
            held = False
        try:
            yield held
        finally:
            if held:
                self.release_later(work, keep_for)

    def release_later(self, work: str, seconds: float) -> None:
        """Drop one hold of `work` once `seconds` have passed (at the heartbeat after that; at
        once when `seconds` is 0)."""
        if seconds <= 0:
            self.release(work)
        else:
            self._later.append((self.clock.now() + seconds, work))

    def holds(self, work: str) -> bool:
        return work in self._held

    async def heartbeat(self) -> None:
        """Renew every claim held here until cancelled (run it for the session's lifetime), and
        drop the holds `release_later` scheduled; when cancelled, release every claim held here,
        so a server started next does not wait for them to lapse."""
        try:
            while True:
                await self.clock.sleep(self.lease_seconds / 3)
                now = self.clock.now()
                due = [work for when, work in self._later if when <= now]
                self._later = [(when, work) for when, work in self._later if when > now]
                for work in due:
                    self.release(work)
                if self._held:
                    try:
                        self.registry.renew_work(self.owner, now + self.lease_seconds)
                    except RegistryError:
                        log.exception("could not renew this server's claims; they lapse")
        finally:
            self._later = []
            for work in list(self._held):
                self._held[work] = 1
                self.release(work)
