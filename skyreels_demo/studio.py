"""The use case: one run as a stream of progress events.

`Studio.generate` walks the path of DESIGN.md (prepare, upload, submit, follow, download) and
yields typed events (events.py); the Gradio handler and the command line only render them.
The run store hears of every step first: a run exists before its upload, its task id is stored
the moment submit returns, and a run whose watcher goes away (Stop, a closed tab, a crash) is
finished by the follower or by `resume` (follower.py). Who pays and where requests go is
`Access`'s business (access.py); nothing about Gradio, and nothing of the offline server,
lives here.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from . import images
from .access import PREVIEW, VISITOR, Access, Backend
from .caps import limits_for
from .client import WaveSpeedClient
from .config import Settings
from .errors import BadInput, Stopped, StudioError, TaskFailed
from .follower import Follower
from .events import (
    Done,
    Downloading,
    Event,
    Prepared,
    Processing,
    Queued,
    Submitted,
    Uploading,
    WaitingForSlot,
)
from .models import SKYREELS_V1, ModelSpec
from .retention import Pruner
from .runs import COMPLETED, DONE, FAILED, PROCESSING, QUEUED, REFUSED, SUBMITTED, Run, RunStore
from .schedule import Expectation, PollSchedule, schedule_from_setting
from .tasks import Task, TaskState
from .webhooks import WebhookHub

log = logging.getLogger(__name__)

# --- input -------------------------------------------------------------------------------------


def check_prompt(prompt: str | None, model: ModelSpec = SKYREELS_V1) -> str:
    text = (prompt or "").strip()
    if not text:
        raise BadInput("Write a prompt first: describe the people and the motion you want to see.")
    if len(text) > model.max_prompt_chars:
        raise BadInput(f"The prompt is {len(text)} characters long; keep it under {model.max_prompt_chars}.")
    return text


def model_prompt(prompt: str, fps_prefix: bool = True, model: ModelSpec = SKYREELS_V1) -> str:
    """The prompt as sent, with the model's recommended prefix unless turned off."""
    return model.with_prefix(prompt, fps_prefix)


def choose_seed(seed: int | float | str | None, model: ModelSpec = SKYREELS_V1) -> int:
    """A concrete seed: -1 (or nothing) becomes a random one, so every video can be reproduced."""
    low, high = model.seed_range
    if seed is None or seed == "":
        seed = low
    try:
        value = int(float(seed)) if not isinstance(seed, int) else seed
        if isinstance(seed, float) and not seed.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise BadInput(f"The seed must be a whole number from {low} to {high}, not {seed!r}.") from None
    if not low <= value <= high:
        raise BadInput(f"The seed must be from {low} to {high}; {value} is out of range.")
    return random.randint(0, high) if value == -1 else value


def prepared_input(image, fit: str) -> tuple[images.PreparedImage | None, str | None]:
    """The image as the model's frame, or an http(s) URL passed on as it is; refused if neither."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise BadInput("Add an image first: drop in a photo of the scene to animate.")
    if isinstance(image, images.PreparedImage):
        return image, None
    if isinstance(image, str) and images.is_remote_url(image):
        return None, image
    return images.prepare(image, fit=fit), None


def video_name(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)[:128] + ".mp4"


# --- the studio --------------------------------------------------------------------------------


class Studio:
    """Runs, for the app and the command line alike."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: RunStore | None = None,
        start_preview: Callable[[], str] | None = None,
        model: ModelSpec = SKYREELS_V1,
        webhooks: WebhookHub | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.store = store or RunStore(settings.runs_db)
        self.access = Access(settings, start_preview=start_preview)
        # Runs expecting webhooks; None where WaveSpeed cannot reach this process (a laptop).
        self.webhooks = webhooks
        self._lock = threading.Lock()
        self.slots = TaskSlots(settings.max_concurrent_tasks)
        self._watched: set[str] = set()  # runs a live `generate` is following
        self._follower: Follower | None = None
        self.pruner = Pruner(settings, self.store)

    # -- what runs usually take --

    def expectation(self, mode: str | None = None) -> Expectation:
        """How long this model's runs on this backend usually take, from the store, else a prior."""
        mode = mode or self.access.default_mode
        if mode == PREVIEW:
            queue_s, processing_s = self.settings.preview_timing
            # The preview keeps to its clock exactly: its window can be trusted from the start.
            prior = Expectation(queue_s=queue_s, processing_s=processing_s, spread_s=0.5, settled=True)
        else:
            prior = Expectation.prior(self.model)
        seen = self.store.durations(self.model.name, self.access.host_for(mode))
        return Expectation.learn(seen.processing_s, seen.queue_s, prior=prior)

    def schedule_for(self, mode: str) -> PollSchedule:
        return schedule_from_setting(self.settings.poll, self.expectation(mode))

    # -- one run --

    def generate(
        self,
        prompt: str,
        image,
        seed: int | str | None = -1,
        *,
        api_key: str | None = None,
        requester: str = "local",
        signed_in: bool = False,
        visitor: str = "",
        fit: str = "crop",
        fps_prefix: bool = True,
        stop: threading.Event | None = None,
        deadline_s: float | None = None,
        sweep: str | None = None,
    ) -> Iterator[Event]:
        """Walk one run from input to saved video, yielding what the person should see.

        `image` is a path, bytes, a Pillow image, an http(s) URL passed on as it is, or an
        already `PreparedImage`. `requester` is who asks, as the server knows them (caps count
        per requester); `visitor` is a browser's private id, for its history. Raises a `StudioError` with its sentence on any failure. Input
        is checked, and the image prepared, before anything is sent or paid for.
        """
        clock = _Clock()
        text = model_prompt(check_prompt(prompt, self.model), fps_prefix, self.model)
        concrete_seed = choose_seed(seed, self.model)
        prepared, remote_url = prepared_input(image, fit)
        clock.mark("prepare_s")
        backend = self.access.backend_for(api_key)
        # Recorded (or refused by a cap) before any money is spent, and before waiting in line.
        run = self.store.create(
            prompt=text,
            seed=concrete_seed,
            mode=backend.mode,
            api_host=backend.host,
            visitor=visitor,
            key_source=backend.key_source,
            sweep=sweep,
            model=self.model.name,
            requester=requester,
            within=limits_for(self.settings, backend, requester, signed_in=signed_in),
        )
        with self._lock:
            # Watched from birth, so the follower never races this generator for its task.
            self._watched.add(run.id)
        handed_over = False
        waiting = None
        try:
            yield Prepared(clock.elapsed, prepared)
            with self.slots.one(stop, clock) as waiting_for_slot:
                yield from waiting_for_slot
                if prepared is not None:
                    image_path = keep_image(self.settings.data_dir, prepared)
                    run = self.store.update(run.id, image_sha256=prepared.sha256, image_path=str(image_path))
                    yield Uploading(clock.elapsed, len(prepared.data), run.id)
                    image_url = backend.client.upload(prepared.data, prepared.filename, prepared.content_type)
                else:
                    image_url = remote_url
                clock.mark("upload_s")
                # An inline image is hundreds of KB of base64: the store keeps a name for it.
                kept_url = f"inline:{prepared.sha256}" if image_url.startswith("data:") and prepared else image_url
                self.store.update(run.id, image_url=kept_url)
                if stop is not None and stop.is_set():
                    raise Stopped("Stopped before the task was sent: nothing was paid for.")
                inputs = {"prompt": text, "image": image_url, "seed": concrete_seed}
                preview = backend.mode == PREVIEW
                waiting = self.webhooks and self.webhooks.expect(
                    backend.client, preview=preview, owner=backend.key_source != VISITOR
                )
                hook = self.webhooks.url(waiting, preview=preview) if waiting else None
                task = backend.client.submit(self.model, inputs, webhook=hook)
                # Write-ahead: the task id is durable before anyone hears of it.
                run = self.store.update(run.id, task_id=task.id, status=SUBMITTED, submitted_at=time.time())
                if waiting is not None:
                    self.webhooks.submitted(waiting, task.id)
                clock.mark("submit_s")
                self.access.keep(run.id, backend)
                handed_over = True
                yield Submitted(clock.elapsed, run.id, task.id, concrete_seed)
                yield from self._follow(run, backend, task, clock, stop, deadline_s)
        except BaseException as exc:
            if not handed_over:
                # Nothing was submitted, so nothing was paid for: the run ends here.
                reason = exc.sentence if isinstance(exc, StudioError) else "stopped before the task was sent"
                self.store.update(run.id, status=REFUSED, error_message=reason, finished_at=time.time())
                if waiting is not None:
                    self.webhooks.forget(waiting=waiting)
            raise
        finally:
            with self._lock:
                self._watched.discard(run.id)
            if handed_over:
                self.left_behind(run.id)

    def _follow(
        self,
        run: Run,
        backend: Backend,
        first: Task,
        clock: "_Clock",
        stop: threading.Event | None,
        deadline_s: float | None,
    ) -> Iterator[Event]:
        expected = self.expectation(backend.mode)
        processing_since: float | None = None
        queued_since = time.monotonic()
        task = first
        pushed = self.pushed_event(run.task_id)
        updates = backend.client.follow(
            run.task_id,
            schedule=schedule_from_setting(self.settings.poll, expected),
            deadline_s=deadline_s,
            stop=stop,
            first=first,
            pushed=pushed,
        )
        recorded = run.status
        for task in self.recording_failures(run, updates):
            if task.state is not TaskState.QUEUED and processing_since is None:
                processing_since = time.monotonic()
                clock.mark("queue_s")
                recorded = self.store.update(run.id, status=PROCESSING, processing_at=time.time()).status
            elif task.state is TaskState.QUEUED and recorded == SUBMITTED:
                # Once, not on every one-second tick while the task waits in the queue.
                recorded = self.store.update(run.id, status=QUEUED).status
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
        run = self.save_video(run, backend.client, task)
        clock.mark("download_s")
        timings = clock.laps()
        if task.inference_ms:
            timings["inference_s"] = task.inference_ms / 1000
        yield Done(clock.elapsed, run, Path(run.video_path), run.seed, task.is_nsfw, timings)

    # -- webhooks --

    def pushed_event(self, task_id: str | None) -> threading.Event | None:
        """What a verified webhook sets for this task, or None when none is expected."""
        return self.webhooks.pushed_event(task_id) if self.webhooks is not None else None

    # -- pieces the follower shares --

    def recording_failures(self, run: Run, updates: Iterator[Task]) -> Iterator[Task]:
        """Pass updates on; a failed task is recorded as failed before its error goes up."""
        try:
            yield from updates
        except TaskFailed as exc:
            self.store.update(
                run.id,
                status=FAILED,
                error_code=exc.code,
                error_message=exc.message or exc.sentence,
                finished_at=time.time(),
            )
            raise

    def save_video(self, run: Run, client: WaveSpeedClient, task: Task) -> Run:
        """Record completion, then download the video at once: WaveSpeed's URLs expire."""
        if self.store.get(run.id).status != COMPLETED:
            run = self.store.update(
                run.id,
                status=COMPLETED,
                finished_at=time.time(),
                output_url=task.video_url,
                inference_ms=task.inference_ms,
                nsfw=int(task.is_nsfw),
            )
        if not task.video_url:
            raise TaskFailed(
                "WaveSpeed finished the task but returned no video: try again (failed tasks are refunded).",
                task_id=task.id,
                code=None,
                message="no outputs",
            )
        dest = self.settings.data_dir / "runs" / video_name(task.id)
        client.download(task.video_url, dest)
        run = self.store.update(run.id, status=DONE, video_path=str(dest))
        self.keep_within_budget()
        return run

    def keep_within_budget(self) -> None:
        """Prune the data directory (retention.py), at most every few minutes."""
        self.pruner.maybe()

    def left_behind(self, run_id: str) -> None:
        """A run's watcher went away: finish it unseen if it is paid for, else forget its key."""
        run = self.store.get(run_id)
        if run.is_unfinished_task and self._follower is not None:
            self._follower.wake()
        elif run.is_finished:
            self.forget(run)

    def forget(self, run: Run) -> None:
        """A finished run's key and webhook secret leave memory."""
        self.access.forget(run.id)
        if self.webhooks is not None:
            self.webhooks.forget(run.task_id)

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._watched)

    # -- the background follower (follower.py) --

    def start_follower(self) -> Follower:
        """Finish, in the background, every paid run nobody is watching (from now and before)."""
        with self._lock:
            if self._follower is None:
                self._follower = Follower(self)
                self._follower.start()
            return self._follower

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        self.access.close()


class TaskSlots:
    """This process's task slots: how many tasks may be between upload and video at once."""

    def __init__(self, count: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, count))
        self._lock = threading.Lock()
        self.busy = 0

    @contextmanager
    def one(self, stop: threading.Event | None, clock: "_Clock") -> Iterator[Iterator[Event]]:
        """A slot: iterate what it gives to wait for it (saying how many are busy meanwhile);
        it is given back when the block ends, if it was ever taken."""
        taken = False

        def wait() -> Iterator[Event]:
            nonlocal taken
            while not self._slots.acquire(timeout=1.0):
                if stop is not None and stop.is_set():
                    raise Stopped("Stopped before the task was sent: nothing was paid for.")
                yield WaitingForSlot(clock.elapsed, self.busy)
            taken = True
            with self._lock:
                self.busy += 1

        try:
            yield wait()
        finally:
            if taken:
                with self._lock:
                    self.busy -= 1
                self._slots.release()


def keep_image(data_dir: Path, prepared: images.PreparedImage) -> Path:
    """The prepared JPEG, kept once per distinct picture (written atomically)."""
    path = data_dir / "images" / f"{prepared.sha256}.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.part")
        tmp.write_bytes(prepared.data)
        tmp.replace(path)
    return path


class _Clock:
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
