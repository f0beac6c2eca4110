"""The use case: one run as a stream of progress events, and finishing runs left behind.

`Studio.generate` walks the path of DESIGN.md (prepare, upload, submit, follow, download) and
yields typed events; the Gradio handler and the command line only render them. The run store
hears of every step first: a run exists before its upload, its task id is stored the moment
submit returns, and a run whose watcher goes away (Stop, a closed tab, a crash) is finished by
the follower or by `resume`. Nothing about Gradio lives here.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from . import images
from .client import Task, WaveSpeedClient
from .config import Settings
from .errors import (
    ApiError,
    BadInput,
    QuotaExceeded,
    Stopped,
    StudioError,
    TaskFailed,
)
from .runs import (
    COMPLETED,
    DONE,
    FAILED,
    LOST,
    PROCESSING,
    QUEUED,
    REFUSED,
    SUBMITTED,
    Run,
    RunStore,
)
from .schedule import AdaptiveSchedule, Expectation, PollSchedule, schedule_from_setting

log = logging.getLogger(__name__)

SEED_MIN, SEED_MAX = -1, 2_147_483_647
MAX_PROMPT_CHARS = 2000
FPS_PREFIX = "FPS-24, "
PREVIEW_HOST = "offline-preview"
PREVIEW_TOKEN = "offline-preview"
# WaveSpeed deletes predictions after 7 days; a run older than that cannot be fetched.
RETENTION_S = 7 * 24 * 3600


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something the person should see; `elapsed_s` counts from the click."""

    elapsed_s: float

    @property
    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class WaitingForSlot(Event):
    running: int

    @property
    def message(self) -> str:
        return f"Waiting for a free slot: {self.running} videos are being made right now."


@dataclass(frozen=True)
class Prepared(Event):
    image: images.PreparedImage | None  # None when the image is a URL passed on as it is

    @property
    def message(self) -> str:
        if self.image is None:
            return "Using the image URL as given."
        return f"Prepared the image: {self.image.width}×{self.image.height}, {len(self.image.data) // 1024} KB."


@dataclass(frozen=True)
class Uploading(Event):
    size: int
    run_id: str

    @property
    def message(self) -> str:
        return f"Uploading the image ({self.size / 1024:.0f} KB)…"


@dataclass(frozen=True)
class Submitted(Event):
    run_id: str
    task_id: str
    seed: int

    @property
    def message(self) -> str:
        return f"Submitted task {self.task_id} (seed {self.seed})."


@dataclass(frozen=True)
class Queued(Event):
    task_id: str
    waited_s: float
    typical_s: float

    @property
    def message(self) -> str:
        return f"Waiting in WaveSpeed's queue: {self.waited_s:.0f} s so far."


@dataclass(frozen=True)
class Processing(Event):
    task_id: str
    processing_s: float
    typical_s: float

    @property
    def message(self) -> str:
        return (
            f"Making the video: {self.processing_s:.0f} s so far; "
            f"it usually takes about {self.typical_s:.0f} s."
        )


@dataclass(frozen=True)
class Downloading(Event):
    task_id: str

    @property
    def message(self) -> str:
        return "Downloading the finished video…"


@dataclass(frozen=True)
class Done(Event):
    run: Run
    video_path: Path
    seed: int
    nsfw: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def message(self) -> str:
        made = self.timings.get("inference_s")
        made_text = f"made in {made:.1f} s, " if made else ""
        flag = " WaveSpeed flagged this video as possibly NSFW." if self.nsfw else ""
        return f"Done: {made_text}{self.timings.get('total_s', self.elapsed_s):.1f} s in all (seed {self.seed}).{flag}"


# --- input -------------------------------------------------------------------------------------


def model_prompt(prompt: str, fps_prefix: bool = True) -> str:
    """The prompt as sent: SkyReels' README asks prompts to start with "FPS-24, "."""
    text = (prompt or "").strip()
    if fps_prefix and not text.upper().startswith("FPS-24"):
        text = FPS_PREFIX + text
    return text


def check_prompt(prompt: str | None) -> str:
    text = (prompt or "").strip()
    if not text:
        raise BadInput("Write a prompt first: describe the people and the motion you want to see.")
    if len(text) > MAX_PROMPT_CHARS:
        raise BadInput(f"The prompt is {len(text)} characters long; keep it under {MAX_PROMPT_CHARS}.")
    return text


def choose_seed(seed: int | float | str | None) -> int:
    """A concrete seed: -1 (or nothing) becomes a random one, so every video can be reproduced."""
    if seed is None or seed == "":
        seed = -1
    try:
        value = int(float(seed)) if not isinstance(seed, int) else seed
        if isinstance(seed, float) and not seed.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise BadInput(f"The seed must be a whole number from -1 to {SEED_MAX}, not {seed!r}.") from None
    if not SEED_MIN <= value <= SEED_MAX:
        raise BadInput(f"The seed must be from -1 to {SEED_MAX}; {value} is out of range.")
    return random.randint(0, SEED_MAX) if value == -1 else value


def _safe_name(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)[:128]


# --- the studio --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where a run's requests go, and whose key pays."""

    mode: str  # "api" or "preview"
    host: str
    key_source: str  # "owner", "visitor" or "preview"
    client: WaveSpeedClient


class Studio:
    """Runs, for the app and the command line alike."""

    def __init__(self, settings: Settings, *, store: RunStore | None = None, preview_timing=None) -> None:
        self.settings = settings
        self.store = store or RunStore(settings.runs_db)
        self._preview_timing = preview_timing
        self._preview = None  # LocalBackend, started on first use
        self._preview_client: WaveSpeedClient | None = None
        self._owner_client: WaveSpeedClient | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrent_tasks))
        self._running = 0
        self._watched: set[str] = set()  # runs a live `generate` is following
        self._visitor_clients: dict[str, WaveSpeedClient] = {}  # run id -> client; memory only
        self._follower: Follower | None = None

    # -- backends --

    def backend_for(self, api_key: str | None = None) -> Backend:
        """A visitor's key, else the owner's key, else the built-in offline preview."""
        if api_key and api_key.strip():
            client = WaveSpeedClient(self.settings.with_key(api_key.strip()))
            return Backend("api", self._api_host(), "visitor", client)
        if self.settings.has_key:
            with self._lock:
                if self._owner_client is None:
                    self._owner_client = WaveSpeedClient(self.settings)
            return Backend("api", self._api_host(), "owner", self._owner_client)
        return Backend("preview", PREVIEW_HOST, "preview", self.preview_client())

    def _api_host(self) -> str:
        return urlsplit(self.settings.base_url).netloc or self.settings.base_url

    def preview_client(self) -> WaveSpeedClient:
        with self._lock:
            if self._preview_client is None:
                from .local_api import LocalBackend, TaskTiming  # FastAPI only when it is used

                timing = self._preview_timing or TaskTiming()
                self._preview = LocalBackend(
                    timing=timing, data_dir=self.settings.data_dir / "preview-backend"
                ).start()
                settings = self.settings.with_key(PREVIEW_TOKEN).with_base_url(self._preview.base_url)
                self._preview_client = WaveSpeedClient(settings)
            return self._preview_client

    def expectation(self, mode: str = "api") -> Expectation:
        """How long runs on this backend usually take, from the store, else a prior."""
        if mode == "preview":
            from .local_api import TaskTiming

            timing = self._preview_timing or TaskTiming()
            if callable(timing):
                timing = timing()
            prior = Expectation(queue_s=timing.queue_s, processing_s=timing.processing_s, spread_s=0.5)
            return self.store.expectation(PREVIEW_HOST, prior)
        return self.store.expectation(self._api_host(), Expectation.prior())

    def _schedule(self, expected: Expectation) -> PollSchedule:
        if self.settings.poll.strip().lower() == "adaptive":
            return AdaptiveSchedule(expected)
        return schedule_from_setting(self.settings.poll)

    # -- shared-key caps --

    def check_quota(self, backend: Backend, visitor: str) -> None:
        """On a shared Space, the owner's key serves a limited number of runs."""
        if backend.key_source != "owner" or not self.settings.shared:
            return
        now = time.time()
        if self.store.count_since(now - 86400, key_source="owner") >= self.settings.app_runs_per_day:
            raise QuotaExceeded(
                "This Space has made all the videos it can today on its owner's key: paste your "
                "own WaveSpeed key to go on, or come back tomorrow."
            )
        used = self.store.count_since(now - 3600, key_source="owner", visitor=visitor)
        if used >= self.settings.visitor_runs_per_hour:
            raise QuotaExceeded(
                f"You have made {used} videos in the last hour on this Space's key: paste your own "
                "WaveSpeed key to go on now, or wait a while."
            )

    # -- one run --

    def generate(
        self,
        prompt: str,
        image,
        seed: int | str | None = -1,
        *,
        api_key: str | None = None,
        visitor: str = "",
        fit: str = "crop",
        fps_prefix: bool = True,
        stop: threading.Event | None = None,
        deadline_s: float | None = None,
        sweep: str | None = None,
    ) -> Iterator[Event]:
        """Walk one run from input to saved video, yielding what the person should see.

        Raises a `StudioError` with its sentence on any failure. Input is checked, and the
        image prepared, before anything is sent or paid for.
        """
        clock = _Clock()
        text = model_prompt(check_prompt(prompt), fps_prefix)
        concrete_seed = choose_seed(seed)
        remote_url = image if isinstance(image, str) and images.is_remote_url(image) else None
        if image is None or (isinstance(image, str) and not image.strip()):
            raise BadInput("Add an image first: drop in a photo of the scene to animate.")
        prepared = None if remote_url else images.prepare(image, fit=fit)
        clock.mark("prepare_s")
        backend = self.backend_for(api_key)
        self.check_quota(backend, visitor)
        yield Prepared(clock.elapsed, prepared)

        yield from self._take_slot(stop, clock)
        try:
            run = self.store.create(
                prompt=text,
                seed=concrete_seed,
                mode=backend.mode,
                api_host=backend.host,
                visitor=visitor,
                key_source=backend.key_source,
                sweep=sweep,
            )
            with self._lock:
                # Watched from birth, so the follower never races this generator for its task.
                self._watched.add(run.id)
            handed_over = False
            try:
                if prepared is not None:
                    image_path = self._keep_image(prepared)
                    run = self.store.update(run.id, image_sha256=prepared.sha256, image_path=str(image_path))
                    yield Uploading(clock.elapsed, len(prepared.data), run.id)
                    image_url = backend.client.upload(prepared.data, prepared.filename, prepared.content_type)
                else:
                    image_url = remote_url
                clock.mark("upload_s")
                self.store.update(run.id, image_url=image_url)
                if stop is not None and stop.is_set():
                    raise Stopped("Stopped before the task was sent: nothing was paid for.")
                task = backend.client.submit(text, image_url, concrete_seed)
                # Write-ahead: the task id is durable before anyone hears of it.
                run = self.store.update(run.id, task_id=task.id, status=SUBMITTED, submitted_at=time.time())
                clock.mark("submit_s")
                with self._lock:
                    if backend.key_source == "visitor":
                        self._visitor_clients[run.id] = backend.client
                handed_over = True
                yield Submitted(clock.elapsed, run.id, task.id, concrete_seed)
                yield from self._follow(run, backend, task, clock, stop, deadline_s)
            except BaseException as exc:
                if not handed_over:
                    # Nothing was submitted, so nothing was paid for: the run ends here.
                    reason = exc.sentence if isinstance(exc, StudioError) else "stopped before the task was sent"
                    self.store.update(run.id, status=REFUSED, error_message=reason, finished_at=time.time())
                raise
            finally:
                with self._lock:
                    self._watched.discard(run.id)
                if handed_over:
                    if self.store.get(run.id).is_unfinished_task:
                        # The person stopped watching; the task is paid for: finish it unseen.
                        self.wake_follower()
                    self.forget_client(run.id)
        finally:
            self._give_slot()

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
        typical = expected.processing_s
        processing_since: float | None = None
        queued_since = time.monotonic()
        task = first
        updates = backend.client.follow(
            run.task_id,
            deadline_s=deadline_s,
            schedule=self._schedule(expected),
            stop=stop,
            first=first,
        )
        recorded = run.status
        for task in self._recording_failures(run, updates):
            if task.status == PROCESSING and processing_since is None:
                processing_since = time.monotonic()
                clock.mark("queue_s")
                recorded = self.store.update(run.id, status=PROCESSING, processing_at=time.time()).status
            elif task.status == QUEUED and recorded == SUBMITTED:
                # Once, not on every one-second tick while the task waits in the queue.
                recorded = self.store.update(run.id, status=QUEUED).status
            if task.is_final:
                continue
            if processing_since is None:
                yield Queued(clock.elapsed, task.id, time.monotonic() - queued_since, expected.queue_s)
            else:
                yield Processing(clock.elapsed, task.id, time.monotonic() - processing_since, typical)
        if processing_since is None:
            clock.mark("queue_s")
        clock.mark("processing_s")
        yield Downloading(clock.elapsed, task.id)
        run = self._save_video(run, backend.client, task)
        clock.mark("download_s")
        timings = clock.laps()
        if task.inference_ms:
            timings["inference_s"] = task.inference_ms / 1000
        yield Done(clock.elapsed, run, Path(run.video_path), run.seed, task.is_nsfw, timings)

    def _recording_failures(self, run: Run, updates: Iterator[Task]) -> Iterator[Task]:
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

    def _save_video(self, run: Run, client: WaveSpeedClient, task: Task) -> Run:
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
        dest = self.settings.data_dir / "runs" / f"{_safe_name(task.id)}.mp4"
        client.download(task.video_url, dest)
        return self.store.update(run.id, status=DONE, video_path=str(dest))

    def _keep_image(self, prepared: images.PreparedImage) -> Path:
        path = self.settings.data_dir / "images" / f"{prepared.sha256}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.part")
            tmp.write_bytes(prepared.data)
            tmp.replace(path)
        return path

    def _take_slot(self, stop: threading.Event | None, clock: "_Clock") -> Iterator[Event]:
        """Wait for one of this process's task slots, saying how many are busy meanwhile."""
        while not self._slots.acquire(timeout=1.0):
            if stop is not None and stop.is_set():
                raise Stopped("Stopped before the task was sent: nothing was paid for.")
            yield WaitingForSlot(clock.elapsed, self._running)
        with self._lock:
            self._running += 1

    def _give_slot(self) -> None:
        with self._lock:
            self._running -= 1
        self._slots.release()

    # -- finishing runs left behind --

    def client_for_run(self, run: Run) -> WaveSpeedClient | None:
        """The client that can follow a stored run, or None (a visitor's key is not kept)."""
        if run.mode == "preview":
            return self.preview_client()
        with self._lock:
            client = self._visitor_clients.get(run.id)
        if client is not None:
            return client
        if run.key_source != "visitor" and self.settings.has_key and run.api_host == self._api_host():
            return self.backend_for(None).client
        return None

    def finish(self, run: Run, *, deadline_s: float | None = None, stop: threading.Event | None = None) -> Run:
        """Follow one stored, unfinished run to its end and save its video."""
        client = self.client_for_run(run)
        if client is None:
            raise ApiError(
                f"Run {run.id} needs the API key that started it: set WAVESPEED_API_KEY "
                "(and WAVESPEED_BASE_URL) to the ones it used, then resume again."
            )
        try:
            task = None
            updates = client.follow(
                run.task_id,
                deadline_s=deadline_s,
                schedule=self._schedule(self.expectation(run.mode)),
                stop=stop,
                submitted_ago_s=time.time() - (run.submitted_at or run.created_at),
            )
            saw_queued = False  # the task may have started while nobody was looking
            for task in self._recording_failures(run, updates):
                saw_queued = saw_queued or task.status == QUEUED
                if task.status == PROCESSING and run.status != PROCESSING:
                    # Only a start seen as it happened is a duration worth learning from.
                    began = time.time() if saw_queued and run.processing_at is None else run.processing_at
                    run = self.store.update(run.id, status=PROCESSING, processing_at=began)
            assert task is not None
            return self._save_video(run, client, task)
        except TaskFailed:
            return self.store.get(run.id)
        except ApiError as exc:
            if exc.status == 404 and time.time() - run.created_at > RETENTION_S:
                return self.store.update(
                    run.id, status=LOST, error_message="WaveSpeed no longer has this task (kept 7 days)."
                )
            raise

    def resume(
        self, task_id: str | None = None, *, deadline_s: float | None = None
    ) -> Iterator[tuple[Run, Run | StudioError]]:
        """Finish unfinished runs (or one), yielding each run and its end or its error."""
        if task_id:
            run = self.store.by_task(task_id)
            if run is None:
                raise BadInput(f"No recorded run has task id {task_id}: list them with `runs`.")
            runs = [run]
        else:
            runs = self.store.unfinished()
        for run in runs:
            if run.status == DONE and run.has_video:
                yield run, run
                continue
            try:
                yield run, self.finish(run, deadline_s=deadline_s)
            except StudioError as exc:
                yield run, exc

    # -- the background follower --

    def start_follower(self) -> "Follower":
        with self._lock:
            if self._follower is None:
                self._follower = Follower(self)
                self._follower.start()
            return self._follower

    def wake_follower(self) -> None:
        if self._follower is not None:
            self._follower.wake()

    def forget_client(self, run_id: str) -> None:
        """Drop a visitor's key from memory once its run no longer needs it."""
        if self.store.get(run_id).is_finished:
            with self._lock:
                self._visitor_clients.pop(run_id, None)

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._watched)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        if self._preview is not None:
            self._preview.stop()


class Follower(threading.Thread):
    """Finishes every submitted run nobody is watching: stopped, abandoned or from before a restart."""

    def __init__(self, studio: Studio, *, idle_s: float = 30.0, workers: int = 6) -> None:
        super().__init__(name="skyreels-follower", daemon=True)
        self.studio = studio
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        # A bounded crew: a hundred runs left behind must not become a hundred pollers.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skyreels-finish")

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._pick_up()
            except Exception:  # the follower must outlive any one bad run
                log.exception("follower pass failed")
            self._wake.wait(self.idle_s)

    def _pick_up(self) -> None:
        watched = self.studio.watched()
        for run in self.studio.store.unfinished():
            with self._lock:
                if run.id in watched or run.id in self._busy:
                    continue
                if self.studio.client_for_run(run) is None:
                    continue
                self._busy.add(run.id)
            self._pool.submit(self._finish, run)

    def _finish(self, run: Run) -> None:
        try:
            end = self.studio.finish(run, stop=self._stop)
            log.info("follower finished run %s: %s", run.id, end.status)
        except Stopped:
            pass
        except StudioError as exc:
            log.warning("follower could not finish run %s: %s", run.id, exc.sentence)
        finally:
            self.studio.forget_client(run.id)
            with self._lock:
                self._busy.discard(run.id)


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

