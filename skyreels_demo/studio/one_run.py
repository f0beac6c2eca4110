"""One run as a stream of progress events: the walk from a click to a saved video.

`walk` is what `Studio.generate` does: it goes the path of DESIGN.md (prepare, upload, submit,
follow, download) step by step and yields typed events (events.py) for the screen or the command
line to render. It is apart from studio.py because it is one use of the studio's steps, in
order; the studio itself holds what every kind of run shares (the store, the line, the caps,
who pays), which prompts and films use too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Generator, Iterator

from skyreels_demo import images
from skyreels_demo.errors import Stopped, SubmitUnconfirmed
from skyreels_demo.images.remote import ImageAddress
from skyreels_demo.status import TaskState
from skyreels_demo.store.records import Mode, Run
from skyreels_demo.studio.access import Backend
from skyreels_demo.studio.events import (
    Done,
    Downloading,
    Event,
    Fetching,
    Prepared,
    Processing,
    Queued,
    Submitted,
    Uploading,
)
from skyreels_demo.studio.line import OWNER, PREVIEW, Turn
from skyreels_demo.studio.recorder import STOPPED_BEFORE_SUBMIT
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source
from skyreels_demo.wavespeed.client import Job

if TYPE_CHECKING:
    from skyreels_demo.studio.studio import Studio

STOPPED_IN_PREVIEW = (
    "Stopped waiting. The offline preview is free and keeps rendering on this machine; its video "
    "will be saved to your history when it is done."
)


def walk(studio: "Studio", request: RunRequest) -> Iterator[Event]:
    """Walk one run from input to saved video, yielding what the person should see.

    Raises a `StudioError` with its sentence on any failure. Input is checked, and the image
    prepared, before anything is sent or paid for; the run is recorded within its caps
    before it waits for a slot. A picture named by its address (`ImageAddress`) is fetched
    only after that, once the caps have let the run go.
    """
    clock = Clock()
    model = studio.model
    text = model.with_prefix(check_prompt(request.prompt, model), request.fps_prefix)
    seed = choose_seed(request.seed, model)
    source = image_source(request.image, request.fit, model, allow_loopback=studio.settings.allow_loopback_images)
    clock.mark("prepare_s")
    run, backend = studio.open_run(request, model, prompt=text, seed=seed)
    job: Job | None = None
    try:
        # Watched from birth, so the follower never races this walk for its task.
        with studio.watching(run.id), studio.until_submitted(run, backend, request) as submitted:
            prepared = yield from _prepared(studio, source, request, clock)
            with _line_turn(studio, backend, request, clock) as turn:
                yield from turn.wait()
                if prepared is not None:
                    yield Uploading(clock.elapsed, len(prepared.data), run.id)
                run, image_url = studio.hand_over_image(run, backend, source if prepared is None else prepared)
                clock.mark("upload_s")
                if request.stop is not None and request.stop.is_set():
                    raise Stopped(STOPPED_BEFORE_SUBMIT)
                inputs = {"prompt": text, "image": image_url, "seed": seed}
                run, job, recovered = yield from _submit(studio, run, backend, turn, inputs, submitted)
                clock.mark("submit_s")
                studio.access.keep(run.id, backend)
                yield Submitted(clock.elapsed, run.id, job.id, seed, recovered=recovered)
                try:
                    yield from _follow(studio, run, job, backend.mode, clock, request)
                except Stopped as exc:
                    if not backend.is_preview:
                        raise
                    # The client's words are about WaveSpeed and money; the preview is neither.
                    raise Stopped(STOPPED_IN_PREVIEW, task_id=exc.task_id) from None
    finally:
        if job is not None:
            studio.left_behind(run.id)
        elif backend.is_visitors:
            backend.client.close()  # nothing to follow: the visitor's key is forgotten


def _prepared(
    studio: "Studio", source: Any, request: RunRequest, clock: "Clock"
) -> Generator[Event, None, images.PreparedImage | None]:
    """The prepared picture (None for a URL given as it is), fetched first when it is named by
    its address: only now, the run admitted by its caps, is it fetched."""
    if isinstance(source, ImageAddress):
        yield Fetching(clock.elapsed)
        source = studio.fetch_admitted(source, studio.model, request)
        clock.mark("prepare_s")
    prepared = source if isinstance(source, images.PreparedImage) else None
    yield Prepared(clock.elapsed, prepared)
    return prepared


def _line_turn(studio: "Studio", backend: Backend, request: RunRequest, clock: "Clock") -> ContextManager[Turn]:
    """A run's place in its account's line: the owner's key and the preview each have one;
    a visitor's own key waits in none (their key, their tier)."""
    account = None if backend.is_visitors else (PREVIEW if backend.is_preview else OWNER)
    return studio.line.turn(account, studio.slot_s(backend.mode), request.stop, lambda: clock.elapsed)


def _submit(
    studio: "Studio", run: Run, backend: Backend, turn: Turn, inputs: dict, submitted: Callable[[], None]
) -> Generator[Event, None, tuple[Run, Job, bool]]:
    """Submit once, in the line's pace, with the webhook to call if one can reach this process;
    a lost answer is looked for (`Studio.recover`). Returns the run, its job and whether it was
    recovered; from then on the slot is the task's, until it ends, watched or not."""
    hub = studio.webhooks
    waiting = hub and hub.expect(backend.client, preview=backend.is_preview, owner=not backend.is_visitors)
    hook = hub.url(waiting, preview=backend.is_preview) if waiting else None
    recovered = False
    try:
        try:
            run, job = yield from turn.submit(
                lambda: studio.launch(run, backend, studio.model, inputs, webhook=hook, paced=True)
            )
        except SubmitUnconfirmed as lost:
            run, job = studio.recover(run, backend, lost)
            recovered = True
    except BaseException:
        if waiting is not None:
            hub.forget(waiting=waiting)
        raise
    submitted()
    turn.hold(run.id)
    if waiting is not None:
        hub.submitted(waiting, job.id)
    return run, job, recovered


def _follow(studio: "Studio", run: Run, job: Job, mode: Mode, clock: "Clock", request: RunRequest) -> Iterator[Event]:
    """The task's progress until it ends, then its video saved."""
    expected = studio.expectation(mode)
    processing_since: float | None = None
    queued_since = time.monotonic()
    task = job.task
    pushed = studio.finisher.pushed_event(run.task_id)
    for task in studio.finisher.follow(run, job, stop=request.stop, deadline_s=request.deadline_s):
        if task.state is not TaskState.QUEUED and processing_since is None:
            processing_since = time.monotonic()
            clock.mark("queue_s")
        if task.is_final:
            continue
        if processing_since is None and pushed is not None:
            # No polls while WaveSpeed will say when it is done: queue and making, together.
            typical = expected.queue_s + expected.processing_s
            yield Processing(clock.elapsed, task.id, time.monotonic() - queued_since, typical)
        elif processing_since is None:
            yield Queued(clock.elapsed, task.id, time.monotonic() - queued_since, expected.queue_s)
        else:
            yield Processing(clock.elapsed, task.id, time.monotonic() - processing_since, expected.processing_s)
    if processing_since is None:
        clock.mark("queue_s")
    clock.mark("processing_s")
    yield Downloading(clock.elapsed, task.id)
    run = studio.finisher.save(studio.store.get(run.id), job.client, task)
    clock.mark("download_s")
    timings = clock.laps()
    if task.inference_ms:
        timings["inference_s"] = task.inference_ms / 1000
    yield Done(clock.elapsed, run, Path(run.video_path), run.seed, task.is_nsfw, timings)


class Clock:
    """Elapsed time since the click, and laps between the stages of a run."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self._last = self.start
        self._laps: dict[str, float] = {}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self._laps[name] = self._laps.get(name, 0.0) + now - self._last
        self._last = now

    def laps(self) -> dict[str, float]:
        return {**self._laps, "total_s": self.elapsed}
