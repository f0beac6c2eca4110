"""A run's events driven from async code, holding a worker thread only while a step runs.

A crowd of runs mostly waits: in the line for a slot, or for WaveSpeed. `watch` asks a run for
its next event in a worker thread, but while the run is in line it sleeps on the event loop
and brings the place up to date itself, so a waiting run holds no thread (and no thread's
memory). The threads a run's steps do take come from two limiters of their own, apart from the
pool the server and Gradio share. Separate from the line (line.py), which knows nothing of
async code or threads: this is how the web room's handlers and the variations drive a run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

from skyreels_demo.studio.events import Event, InLine, Prepared
from skyreels_demo.studio.line import REFRESH_S, Line

log = logging.getLogger(__name__)

_DONE = object()
ARRIVING_AT_ONCE = 4  # runs preparing their image or stepping in line at once, in worker threads
RUNNING_AT_ONCE = 1000  # runs past their turn: bounded by the line's slots and visitors' caps
_limiters: dict[str, Any] = {}


def _limiter(name: str) -> Any:
    """The worker threads a run's steps take, apart from the small pool the server and Gradio
    share for uploads and quick events (server.py), so that runs never starve those:
    "arriving" (preparing an image, joining the line) shares a few, so a crowd arriving at once
    does not take a thread (and its memory) each; "running" (submitting and following a task,
    about one thread per task in flight) is as many as there are runs past their turn."""
    import anyio

    if name not in _limiters:
        _limiters[name] = anyio.CapacityLimiter(ARRIVING_AT_ONCE if name == "arriving" else RUNNING_AT_ONCE)
    return _limiters[name]


def _close_when_idle(close, wait_s: float = 30.0) -> None:
    """Close a generator that another thread may still be running a step of."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            close()
            return
        except ValueError:  # "generator already executing": its step ends soon, stop is set
            if time.monotonic() > deadline:
                log.warning("a run's events could not be closed: its step did not end")
                return
            time.sleep(0.05)


async def _until_moved(line: Line, version: int, stop: threading.Event | None, *, every: float = 0.25) -> None:
    """Sleep on the event loop (no thread) until the line moves, Stop, or REFRESH_S passes."""
    give_up = time.monotonic() + REFRESH_S
    while line.version == version and time.monotonic() < give_up:
        if stop is not None and stop.is_set():
            return
        await asyncio.sleep(every)


T = TypeVar("T")


def _itself(item: Any) -> Any:
    return item


async def watch(
    events: Iterator[T],
    line: Line,
    stop: threading.Event | None,
    *,
    event_of: Callable[[T], Event | None] = _itself,
    with_place: Callable[[T, InLine], T] = lambda _item, place: place,  # type: ignore[assignment, return-value]
) -> AsyncIterator[T]:
    """A run's events, for async code: each step runs in a worker thread, but while the run is in
    line no thread is held (the next event is asked for only once the line has moved).

    The items may wrap a run's events (a film's updates: `event_of` finds the event in one, and
    `with_place` makes the same item with its place brought up to date)."""
    import anyio.to_thread

    arriving = True  # until the run's turn: its image prepared, its place in line
    left = True  # the watcher went away (a closed tab, a cancelled call) rather than the run ending
    try:
        while True:
            limiter = _limiter("arriving" if arriving else "running")
            try:
                item = await anyio.to_thread.run_sync(next, events, _DONE, limiter=limiter)
            except Exception:
                left = False  # the run itself ended, with its error
                raise
            if item is _DONE:
                left = False
                return
            event = event_of(item)
            in_line = isinstance(event, InLine) and event.line_version >= 0
            arriving = arriving and (isinstance(event, Prepared) or in_line)
            yield item
            # In line: the place is brought up to date here, on the event loop; the run itself
            # (and a thread) is asked again only when its turn has come, or for Stop.
            received = time.monotonic()
            while isinstance(event, InLine) and event.line_version >= 0:
                await _until_moved(line, event.line_version, stop)
                if stop is not None and stop.is_set():
                    break
                event = line.refreshed(event, event.elapsed_s + time.monotonic() - received)
                received = time.monotonic()
                if event is not None:
                    yield with_place(item, event)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            if left and stop is not None:
                # Nobody watches any more: the run stops waiting (a paid task is finished unseen).
                stop.set()
            # A closed tab or Stop: the run leaves the line (its generator's blocks unwind), once
            # the step running in a worker thread, if any, has heard the stop. Shielded: a
            # cancelled watcher must still let the run record where it stands.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close_when_idle, close, limiter=_limiter("running"))


def few_memory_arenas(arenas: int = 2) -> bool:
    """Ask glibc for few malloc arenas in this process (as MALLOC_ARENA_MAX would): a crowd
    arriving at once prepares its images in several worker threads, and each thread's own arena
    keeps its freed pages, about 2 MB of resident memory per visitor that never comes back.
    Returns whether it took (not on other C libraries)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(-8, arenas))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False

