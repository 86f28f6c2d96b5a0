"""The next item of a stream made on a thread while the caller works on the last one (source chunks, golden records)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()
#: Seconds a blocked hand-off waits before looking again whether the caller has gone.
_POLL = 0.05


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced on a thread while the caller works on the one before.

    The parts that leave the GIL (Arrow's parser, the database server, the socket) then run
    beside the caller's work. The next item is begun only once the caller has taken the last
    one, so at most two are alive: memory stays bounded. An
    exception the producer meets is raised here, where the caller would have met it; a
    caller that stops early stops the producer (its current item finished) and closes ``items``.

    Example:
        >>> list(prefetched(iter(range(3))))
        [0, 1, 2]
    """
    handoff: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                pass
        return False

    def until_taken() -> bool:
        while not stop.is_set():
            if taken.acquire(timeout=_POLL):
                return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not (offer((item, None)) and until_taken()):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed over, raised in the caller's thread
            offer((None, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        offer((_DONE, None))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            taken.release()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()
