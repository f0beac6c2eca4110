"""Several seeds at once: one prompt and one image as 2 to 4 videos side by side.

Each variation is its own run through `Studio.generate`, so each is recorded, passes the caps
and waits its turn in the account's line (line.py) like any other run; the image is prepared once
and shared. Updates from all of them arrive as they happen, each saying which variation, its
seed and its latest event; one variation failing (a cap refusal, a failed task) ends only that
one. One `stop` ends them all.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

import anyio.to_thread

from skyreels_demo.errors import BadInput, StudioError
from skyreels_demo.studio.events import Done, Event
from skyreels_demo.studio.watching import watch
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source

if TYPE_CHECKING:
    from skyreels_demo.studio.studio import Studio

log = logging.getLogger(__name__)

MIN_VARIATIONS, MAX_VARIATIONS = 2, 4
UNEXPECTED = "Something went wrong on our side with this variation: try it again, and report it if it keeps happening."


@dataclass(frozen=True)
class VariationUpdate:
    """What one variation is doing now. `number` counts from 1, as a person would."""

    number: int
    seed: int
    event: Event | None = None  # its latest progress event; None before its first
    video_path: Path | None = None  # set once its video is saved
    error: StudioError | None = None  # set when it ended without a video (a refusal, a failure, Stop)

    @property
    def finished(self) -> bool:
        return self.video_path is not None or self.error is not None

    @property
    def message(self) -> str:
        if self.error is not None:
            return self.error.sentence
        return self.event.message if self.event is not None else "Waiting to start…"


def variation_seeds(seed: int | float | str | None, count: int, model: ModelSpec) -> list[int]:
    """`count` distinct seeds: random ones for -1, else `seed`, `seed + 1`, … (wrapping at the top)."""
    first = choose_seed(seed, model)  # checks it; -1 comes back as a random seed
    top = model.seed_max
    if _is_random(seed):
        return random.sample(range(top + 1), count)
    return model.following_seeds(first, count)


def _seen(which: int, seed: int, event: Event) -> VariationUpdate:
    """A variation's latest event, with its video once it is saved."""
    return VariationUpdate(which, seed, event, video_path=event.video_path if isinstance(event, Done) else None)


def _ended(which: int, seed: int, latest: Event | None, exc: Exception) -> VariationUpdate:
    """A variation that ended without a video: its sentence, or ours for an unexpected failure."""
    if isinstance(exc, StudioError):
        return VariationUpdate(which, seed, latest, error=exc)
    log.error("variation %d (seed %d) failed unexpectedly", which, seed, exc_info=exc)
    return VariationUpdate(which, seed, latest, error=StudioError(UNEXPECTED))


_UNSEEN: set[asyncio.Task] = set()  # variations whose watcher left: kept until they end


async def stream_variations(studio: "Studio", request: RunRequest, count: Any) -> AsyncIterator[VariationUpdate]:
    """Run `request` with `count` (2 to 4) distinct seeds at once, yielding updates: the page's,
    the API's and MCP's one way to make variations.

    The seeds are `request.seed` and the ones after it, or random ones for -1. First one update
    per variation with its seed, then each variation's events as they come; every variation ends
    with one update carrying its `video_path` or its `error`. Bad input (prompt, image, count,
    seed) raises `BadInput` before anything starts. Each variation is a task on the event loop
    (watching.watch), so variations waiting in line hold no thread. Setting `request.stop` ends every
    variation's wait (tasks already sent still finish and are saved to History); so does leaving
    this iterator early (one stop is made here when none is given).
    """
    shared, seeds, halt = await anyio.to_thread.run_sync(_plan, studio, request, count)
    updates: asyncio.Queue[VariationUpdate | int] = asyncio.Queue()

    async def run(which: int, its_seed: int) -> None:
        latest: Event | None = None
        try:
            async for latest in watch(studio.generate(shared.but(seed=its_seed)), studio.line, halt):
                updates.put_nowait(_seen(which, its_seed, latest))
        except Exception as exc:
            updates.put_nowait(_ended(which, its_seed, latest, exc))
        finally:
            updates.put_nowait(which)

    for which, its_seed in enumerate(seeds, start=1):
        yield VariationUpdate(which, its_seed)
    running = len(seeds)
    tasks = [asyncio.create_task(run(which, its_seed)) for which, its_seed in enumerate(seeds, start=1)]
    try:
        while running:
            update = await updates.get()
            if isinstance(update, int):
                running -= 1
            else:
                yield update
    finally:
        if running:
            halt.set()  # nobody is listening: stop waiting; paid tasks are finished unseen
            for task in tasks:
                if not task.done():
                    _UNSEEN.add(task)
                    task.add_done_callback(_UNSEEN.discard)


# --- pieces ------------------------------------------------------------------------------------


def _plan(studio: "Studio", request: RunRequest, count: Any) -> tuple[RunRequest, list[int], threading.Event]:
    """The shared request (its image prepared once), the seeds and the stop of one set of variations."""
    number = _count(count)
    check_prompt(request.prompt, studio.model)
    seeds = variation_seeds(request.seed, number, studio.model)
    halt = request.stop if request.stop is not None else threading.Event()
    loopback = studio.settings.allow_loopback_images
    shared = request.but(image=image_source(request.image, request.fit, studio.model, allow_loopback=loopback), stop=halt)
    return shared, seeds, halt


def _count(count: Any) -> int:
    """How many variations, from a number a form may send as 3, 3.0 or "3"."""
    try:
        value = float(count)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(count, bool) or not value.is_integer() or not MIN_VARIATIONS <= value <= MAX_VARIATIONS:
        raise BadInput(f"Choose from {MIN_VARIATIONS} to {MAX_VARIATIONS} variations, not {count!r}.")
    return int(value)


def _is_random(seed: int | float | str | None) -> bool:
    """Whether a seed that `choose_seed` accepted asks for a random one."""
    return seed is None or seed == "" or float(seed) == -1
