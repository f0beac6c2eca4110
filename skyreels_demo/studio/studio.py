"""The use case: one run as a stream of progress events, for the app and the command line.

`Studio.generate` walks the path of DESIGN.md (prepare, upload, submit, follow, download) and
yields typed events (events.py); the Gradio handler and the command line only render them.
`Studio` builds its parts: the run store, who pays and where requests go (`Access`,
access.py), the line strangers share (line.py), the finisher; the steps every kind of run takes
are its `RunSteps` (steps.py), which prompts and films take too. The run store hears of every
step first: a run exists before its upload, its task id is stored the moment submit returns,
and a run whose watcher goes away (Stop, a closed tab, a crash) is finished by the follower or
by `resume` (follower.py). Nothing about Gradio, and nothing of the offline server, lives here.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, ContextManager, Generator, Iterator

from skyreels_demo import images
from skyreels_demo.config import Settings
from skyreels_demo.errors import Stopped, SubmitUnconfirmed
from skyreels_demo.images.remote import ImageAddress
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import IN_FLIGHT, TaskState
from skyreels_demo.store.records import Mode, Run
from skyreels_demo.store.retention import Pruner
from skyreels_demo.store.runs import RunStore
from skyreels_demo.studio.access import Access, Backend
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
from skyreels_demo.studio.finisher import Finisher
from skyreels_demo.studio.follower import Follower, recover_lost, resume
from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.studio.keys import KeyRefusals, in_use
from skyreels_demo.studio.line import OWNER, PREVIEW, Line, Turn
from skyreels_demo.studio.pricing import Prices
from skyreels_demo.studio.recorder import STOPPED_BEFORE_SUBMIT, RunRecorder
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source
from skyreels_demo.studio.steps import RunSteps
from skyreels_demo.wavespeed.client import Job

log = logging.getLogger(__name__)
STOPPED_IN_PREVIEW = (
    "Stopped waiting. The offline preview is free and keeps rendering on this machine; its video "
    "will be saved to your history when it is done."
)
FETCH_STOP_CHECK_S = 0.5  # how soon a run waiting for its picture's fetch hears Stop


class Studio(RunSteps):
    """Runs of one video model, for the app and the command line alike."""

    def __init__(
        self,
        settings: Settings,
        model: ModelSpec,
        *,
        store: RunStore | None = None,
        start_preview: Callable[[], str] | None = None,
        webhooks: WebhookHub | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.store = store or RunStore(settings.runs_db)
        self.recorder = RunRecorder(self.store, task_ended=lambda run: self.line.task_ended(run.id))
        self.access = Access(settings, start_preview=start_preview)
        # What a run costs on the owner's key, as WaveSpeed answers it (pricing.py).
        self.prices = Prices(self.access)
        # Runs expecting webhooks; None where WaveSpeed cannot reach this process (a laptop).
        self.webhooks = webhooks
        self._lock = threading.Lock()
        # One line per account that strangers share (line.py): the owner's key, the preview.
        self.line = Line(
            slots=settings.max_concurrent_tasks,
            submits_per_minute=settings.submits_per_minute,
            size=settings.queue_size,
            max_wait_s=settings.max_wait_minutes * 60,
            in_flight=self._in_flight,
        )
        self._watched: set[str] = set()  # runs a live `generate` is following
        self._follower: Follower | None = None
        self.pruner = Pruner(settings, self.store)
        # Keys WaveSpeed refused, per visitor: after a few, their own-key runs stop here.
        self.key_refusals = KeyRefusals()
        self.finisher = Finisher(
            recorder=self.recorder,
            access=self.access,
            videos_dir=settings.videos_dir,
            schedule_for=self.schedule_for,
            webhooks=webhooks,
            after_save=self.keep_within_budget,
        )

    def _in_flight(self, run_id: str) -> bool:
        """Whether the run's task is still running on its backend, as far as the store knows."""
        try:
            return self.store.get(run_id).status in IN_FLIGHT
        except KeyError:
            return False

    # -- one run --

    def generate(self, request: RunRequest) -> Iterator[Event]:
        """Walk one run from input to saved video, yielding what the person should see (below);
        a visitor's key is masked in the log while the run uses it, then forgotten (keys.py)."""
        with in_use(request.api_key):
            yield from self._walk(request)

    def _walk(self, request: RunRequest) -> Iterator[Event]:
        """The walk itself, its steps in order.

        Raises a `StudioError` with its sentence on any failure. Input is checked, and the image
        prepared, before anything is sent or paid for; the run is recorded within its caps
        before it waits for a slot. A picture named by its address (`ImageAddress`) is fetched
        only after that, once the caps have let the run go.
        """
        clock = Clock()
        model = self.model
        text = model.with_prefix(check_prompt(request.prompt, model), request.fps_prefix)
        seed = choose_seed(request.seed, model)
        source = image_source(request.image, request.fit, model, allow_loopback=self.settings.allow_loopback_images)
        clock.mark("prepare_s")
        run, backend = self.open_run(request, model, prompt=text, seed=seed)
        job: Job | None = None
        try:
            # Watched from birth, so the follower never races this walk for its task.
            with self.watching(run.id), self.until_submitted(run, backend, request) as submitted:
                prepared = yield from self._prepared(source, request, clock)
                with self._line_turn(backend, request, clock) as turn:
                    yield from turn.wait()
                    if prepared is not None:
                        yield Uploading(clock.elapsed, len(prepared.data), run.id)
                    run, image_url = self.hand_over_image(run, backend, source if prepared is None else prepared)
                    clock.mark("upload_s")
                    if request.stop is not None and request.stop.is_set():
                        raise Stopped(STOPPED_BEFORE_SUBMIT)
                    inputs = {"prompt": text, "image": image_url, "seed": seed}
                    run, job, recovered = yield from self._submit(run, backend, turn, inputs, submitted)
                    clock.mark("submit_s")
                    self.access.keep(run.id, backend)
                    yield Submitted(clock.elapsed, run.id, job.id, seed, recovered=recovered)
                    try:
                        yield from self._follow(run, job, backend.mode, clock, request)
                    except Stopped as exc:
                        if not backend.is_preview:
                            raise
                        # The client's words are about WaveSpeed and money; the preview is neither.
                        raise Stopped(STOPPED_IN_PREVIEW, task_id=exc.task_id) from None
        finally:
            if job is not None:
                self.left_behind(run.id)
            elif backend.is_visitors:
                backend.client.close()  # nothing to follow: the visitor's key is forgotten

    def _prepared(
        self, source: Any, request: RunRequest, clock: Clock
    ) -> Generator[Event, None, images.PreparedImage | None]:
        """The prepared picture (None for a URL given as it is), fetched first when it is named by
        its address: only now, the run admitted by its caps, is it fetched."""
        if isinstance(source, ImageAddress):
            yield Fetching(clock.elapsed)
            source = self.fetch_admitted(source, self.model, request)
            clock.mark("prepare_s")
        prepared = source if isinstance(source, images.PreparedImage) else None
        yield Prepared(clock.elapsed, prepared)
        return prepared

    def _line_turn(self, backend: Backend, request: RunRequest, clock: Clock) -> ContextManager[Turn]:
        """A run's place in its account's line: the owner's key and the preview each have one;
        a visitor's own key waits in none (their key, their tier)."""
        account = None if backend.is_visitors else (PREVIEW if backend.is_preview else OWNER)
        return self.line.turn(account, self.slot_s(backend.mode), request.stop, lambda: clock.elapsed)

    def _submit(
        self, run: Run, backend: Backend, turn: Turn, inputs: dict, submitted: Callable[[], None]
    ) -> Generator[Event, None, tuple[Run, Job, bool]]:
        """Submit once, in the line's pace, with the webhook to call if one can reach this process;
        a lost answer is looked for (`Studio.recover`). Returns the run, its job and whether it was
        recovered; from then on the slot is the task's, until it ends, watched or not."""
        hub = self.webhooks
        waiting = hub and hub.expect(backend.client, preview=backend.is_preview, owner=not backend.is_visitors)
        hook = hub.url(waiting, preview=backend.is_preview) if waiting else None
        recovered = False
        try:
            try:
                run, job = yield from turn.submit(
                    lambda: self.launch(run, backend, self.model, inputs, webhook=hook, paced=True)
                )
            except SubmitUnconfirmed as lost:
                run, job = self.recover(run, backend, lost)
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

    def _follow(self, run: Run, job: Job, mode: Mode, clock: Clock, request: RunRequest) -> Iterator[Event]:
        """The task's progress until it ends, then its video saved."""
        expected = self.expectation(mode)
        processing_since: float | None = None
        queued_since = time.monotonic()
        task = job.task
        pushed = self.finisher.pushed_event(run.task_id)
        for task in self.finisher.follow(run, job, stop=request.stop, deadline_s=request.deadline_s):
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
        run = self.finisher.save(self.store.get(run.id), job.client, task)
        clock.mark("download_s")
        timings = clock.laps()
        if task.inference_ms:
            timings["inference_s"] = task.inference_ms / 1000
        yield Done(clock.elapsed, run, Path(run.video_path), run.seed, task.is_nsfw, timings)

    # -- runs nobody watches --

    def keep_within_budget(self) -> None:
        """Prune the data directory (retention.py), at most every few minutes."""
        self.pruner.maybe()

    def left_behind(self, run_id: str) -> None:
        """A run's watcher went away: finish it unseen if it is paid for, else forget its key."""
        run = self.store.get(run_id)
        if run.is_unfinished_task and self._follower is not None:
            self._follower.wake()
        elif run.is_finished:
            self.finisher.release(run)

    @contextmanager
    def watching(self, run_id: str) -> Iterator[None]:
        """Someone follows this stored run here (a film carrying on): the follower leaves it be."""
        with self._lock:
            self._watched.add(run_id)
        try:
            yield
        finally:
            with self._lock:
                self._watched.discard(run_id)

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._watched)

    def start_follower(self) -> Follower:
        """Finish, in the background, every paid run nobody is watching (from now and before)."""
        with self._lock:
            if self._follower is None:
                self._follower = Follower(self.finisher, self.store, self.model.name, self.watched)
                self._follower.start()
            return self._follower

    def resume(self, task_id: str | None = None, *, deadline_s: float | None = None):
        """Finish unfinished runs (or one task): see follower.resume."""
        return resume(self.finisher, self.store, self.model.name, task_id, deadline_s=deadline_s)

    def recover_lost(self):
        """Look again for the tasks of this model's `unconfirmed` runs: see follower.recover_lost."""
        return recover_lost(self.finisher, self.store, self.model.name)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        self.access.close()


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
