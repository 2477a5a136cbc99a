"""Producing ahead of a consumer in a worker thread: the renderer draws the next frames while
the encoder compresses this one."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar, cast

T = TypeVar("T")


@contextlib.contextmanager
def made_ahead(items: Iterable[T], depth: int) -> Iterator[Iterator[T]]:
    """Iterate `items` in a worker thread, up to `depth` items ahead of the consumer.

    The encoder releases the GIL while it compresses a frame, and so do numpy and most of
    Pillow while the next one is drawn: producing and encoding overlap on different cores.
    An error in `items` is raised to the consumer; leaving the block stops the worker."""
    ready: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: tuple[bool, object]) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.05)
                return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over((False, exc))
            return
        hand_over((False, None))

    def consume() -> Iterator[T]:
        while True:
            more, value = ready.get()
            if more:
                yield cast(T, value)
                continue
            if isinstance(value, BaseException):
                raise value
            return

    worker = threading.Thread(target=produce, name="sora-mcp-frames", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        worker.join()
