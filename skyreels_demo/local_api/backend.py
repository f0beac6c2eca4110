"""LocalBackend: the server's lifecycle and the tasks it creates, from submit to video.

How it is served (the port, uvicorn, its thread) is server.py's; this module holds the tasks.
"""

from __future__ import annotations

import collections
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import uvicorn

from skyreels_demo.local_api import routes
from skyreels_demo.local_api.clock import RETENTION_S, RenderDone, TaskFailure, TaskRecord, TaskTiming
from skyreels_demo.local_api.faults import Faults
from skyreels_demo.local_api.fetch import ImageUnavailable, fetch_image, refuse_address
from skyreels_demo.local_api.limits import Admissions, Limits, OverLimits
from skyreels_demo.local_api.pusher import Pusher
from skyreels_demo.local_api.moves import camera_move
from skyreels_demo.local_api.render import NotAnImage, PreviewRenders
from skyreels_demo.local_api.routes.llm import Answers
from skyreels_demo.local_api.server import bind, build_server, run_in_thread, url_host
from skyreels_demo.local_api.storage import Storage
from skyreels_demo.models import VIDEO_MODELS, ModelSpec
from skyreels_demo.status import ApiWord

log = logging.getLogger(__name__)

RENDER_WORKERS = 2


class LocalBackend:
    """A WaveSpeed-compatible server for SkyReels V1 on a loopback port, in a background thread.

    `api_key=None` accepts any non-empty Bearer token. Once stopped it cannot be started again.
    `clock` is what it reads the time from (seconds, like time.time); a test that drives it sees
    every state of a task however late its polls land. `retention_s` is how long a task is
    kept before its result answers `deleted` (WaveSpeed's 7 days; settable while serving, so a
    test can age tasks). `sync_wait_s` bounds how long a submit with `enable_sync_mode` waits
    for its task to end before answering it as still processing (WaveSpeed's sync timeout).
    `retired` names kinds of request (e.g. "ticket", "upload", "balance", "predictions",
    "pricing") whose routes answer 404. `prices` is what the pricing route answers per model
    (default: each model's listed price), settable while serving. `limits` (off by default;
    settable while serving) keeps an account tier's tasks at once and submits a minute,
    answering 429 past them (`refused` lists each). `checks` holds, per task id, the clock's
    time of every result request that named it.
    Tasks are kept in `data_dir/tasks/`; on start it answers for the tasks stored there by an
    earlier backend (they are not counted in `created_task_ids`, which is this one's own).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        timing: TaskTiming | Callable[[], TaskTiming] = TaskTiming(),
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        render: bool = True,
        retired: tuple[str, ...] = (),
        balance: float = 100.0,
        models: tuple[ModelSpec, ...] = VIDEO_MODELS,
        clock: Callable[[], float] = time.time,
        retention_s: float = RETENTION_S,
        sync_wait_s: float = 120.0,
        prices: dict[str, float] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.clock = clock
        self.limits = limits
        self._admissions = Admissions()
        self._admitting = threading.Lock()
        self.checks: dict[str, list[float]] = collections.defaultdict(list)
        self.retention_s = retention_s
        self.sync_wait_s = sync_wait_s
        self._api_key = api_key
        # The video models it serves, each at its own route, frames, frame rate and seeds.
        self.models = {spec.name: spec for spec in models}
        if not self.models:
            raise ValueError("the local backend needs at least one video model to serve")
        # Kinds of request whose route answers 404, as if WaveSpeed had taken it away.
        self.retired: set[str] = set(retired)
        self.balance = balance  # the account's credit in USD, as the balance routes report it
        # A run's price in USD per model, as the pricing route answers it.
        self.prices: dict[str, float] = {spec.name: spec.price_usd for spec in models}
        self.prices.update(prices or {})
        self._timing = timing
        self.storage = Storage(None if data_dir is None else Path(data_dir))
        self.data_dir = self.storage.data_dir
        self._renders = PreviewRenders(self.storage.renders_dir)
        self.host = host
        self.port = port
        self.render = render
        self.base_url = ""
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults = Faults(routes.KINDS)
        self.created_task_ids: list[str] = []
        self.answers = Answers()  # the vision LLM's calls, in memory
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskRecord] = {}
        self._restored = False
        self._pool = ThreadPoolExecutor(max_workers=RENDER_WORKERS, thread_name_prefix="preview-render")
        self._placeholder: Path | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # Never let an environment proxy carry a loopback fetch off this machine.
        self._http = requests.Session()
        self._http.trust_env = False
        self.pusher = Pusher(self)  # delivers webhooks for tasks that asked for them
        self.app = routes.build_app(self)

    # -- lifecycle --

    def start(self) -> LocalBackend:
        """Serve in a daemon thread; return once the server answers."""
        if self._thread is not None:
            return self
        sock, server = self._prepare(log_level="warning")
        self._server = server
        self._thread = run_in_thread(server, sock, f"local-api:{self.port}", self.base_url)
        self._http.get(self.base_url + "/", timeout=5).raise_for_status()
        log.info("local backend serving at %s (data in %s)", self.base_url, self.data_dir)
        return self

    def stop(self) -> None:
        self.storage.close()
        self.pusher.stop()
        if self._server is not None:
            # Stop means stop: don't linger for idle keep-alive connections or open downloads.
            self._server.should_exit = self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _prepare(self, *, log_level: str) -> tuple[socket.socket, uvicorn.Server]:
        """Bind the port (so port 0 becomes a real one) and build the server."""
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{url_host(self.host)}:{self.port}"
        self.storage.hold_server()  # before restoring: another backend starting now leaves ours be
        if not self.render:
            self._placeholder = self._renders.placeholder(self.default_model)
        self._restore()
        with self._lock:
            now = self.clock()
            waiting = [r for r in self._tasks.values() if _awaits_webhook(r, now)]
        for record in waiting:  # a restored task that asked for a webhook still gets one
            self.pusher.watch(record.id, record.due_at)
        self.pusher.start()
        return sock, build_server(self.app, log_level=log_level)

    def _restore(self) -> None:
        """Answer (once) for the tasks kept in storage, finishing the renders they still need;
        a task whose own backend still serves (another process's, on the same folder) is left
        to it."""
        if self._restored:
            return
        self._restored = True
        kept = self.storage.restore()
        resumed = left = 0
        for record in kept:
            if self.storage.serving_elsewhere(record.server):
                left += 1
                continue
            resumed += self._adopt(record)
        if kept:
            log.info(
                "restored %d stored tasks (%d to finish rendering; %d left to the backend still serving them)",
                len(kept) - left, resumed, left,
            )

    def _adopt(self, record: TaskRecord) -> int:
        """Answer for a stored task from now on; 1 if its video is still to be made, else 0."""
        record.clock = self.clock
        record.retention = self.retention
        with self._lock:
            if record.id in self._tasks:
                return 0
            self._tasks[record.id] = record
        if not record.needs_render:
            return 0
        if self._placeholder is not None:
            record.render = RenderDone(self._placeholder, record.created_at)
            self.storage.save(record)
        else:
            self._pool.submit(self._make_video, record, True)
        return 1

    def made_elsewhere(self, task_id: str) -> bool:
        """Whether another backend that still serves (in any process, on this folder) made the
        task and answers for it: this one does not know it, and leaves it alone."""
        if task_id in self._tasks:
            return False
        record = self.storage.stored_task(task_id)
        return record is not None and self.storage.serving_elsewhere(record.server)

    # -- what tests and routes ask of it --

    def retention(self) -> float:
        """Seconds a task is kept: read live, so a test that changes `retention_s` ages every task."""
        return self.retention_s

    @property
    def api_key(self) -> str | None:
        """The only key it accepts, or None when any non-empty key will do."""
        return self._api_key

    def task(self, task_id: str) -> TaskRecord:
        """The server-side record of a task (KeyError if there is none)."""
        return self._tasks[task_id]

    def find_task(self, task_id: str) -> TaskRecord | None:
        """The task, if this backend answers for it: its own, or one stored by a backend that
        no longer serves (a process that ended), taken on here when first asked for."""
        record = self._tasks.get(task_id)
        if record is None:
            stored = self.storage.stored_task(task_id)
            if stored is not None and not self.storage.serving_elsewhere(stored.server):
                self._adopt(stored)
                if _awaits_webhook(stored, self.clock()):
                    self.pusher.watch(stored.id, stored.due_at)
                record = self._tasks.get(task_id)
        return record

    def all_tasks(self) -> list[TaskRecord]:
        """Every task it answers for (its own and restored ones), for the list of predictions."""
        with self._lock:
            return list(self._tasks.values())

    @property
    def tasks_created(self) -> int:
        return len(self.created_task_ids)

    def count_request(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def note_check(self, task_id: str) -> None:
        """A result request named this task: when, for tests of how often a client asks."""
        with self._lock:
            self.checks[task_id].append(self.clock())

    @property
    def refused(self) -> list[tuple[float, str]]:
        """Submits answered 429 for being over `limits`: (the clock's time, why)."""
        return list(self._admissions.refused)

    def in_flight(self, now: float | None = None) -> int:
        """Tasks created or processing at `now` (default: the clock's now)."""
        now = self.clock() if now is None else now
        with self._lock:
            records = list(self._tasks.values())
        return sum(1 for r in records if r.status_at(now) in (ApiWord.CREATED, ApiWord.PROCESSING))

    # -- tasks --

    @property
    def default_model(self) -> ModelSpec:
        return next(iter(self.models.values()))

    def model_of(self, record: TaskRecord) -> ModelSpec:
        """The model a task was made for (tasks stored before models were recorded: the first)."""
        return self.models.get(record.model) or self.default_model

    def create_task(
        self, model: ModelSpec, prompt: str, image_url: str, seed: int, webhook: str | None = None
    ) -> TaskRecord:
        """Record a new task (on disk first) and start making its video; seed -1 picks one.
        Raises `OverLimits` (nothing made) when `limits` are on and this submit is past them."""
        with self._admitting:  # one at a time, so two submits cannot both take the last place
            limits = self.limits
            if limits is not None:
                now = self.clock()
                refusal = self._admissions.refusal(limits, now, self.in_flight(now))
                if refusal is not None:
                    raise OverLimits(refusal)
            return self._create_task(model, prompt, image_url, seed, webhook)

    def _create_task(
        self, model: ModelSpec, prompt: str, image_url: str, seed: int, webhook: str | None
    ) -> TaskRecord:
        timing = self._timing if isinstance(self._timing, TaskTiming) else self._timing()
        if seed == -1:
            seed = random.randint(0, model.seed_max)
        faults = self.faults._take_task()
        record = TaskRecord(
            id=uuid.uuid4().hex,
            prompt=prompt,
            seed=seed,
            image_url=image_url,
            created_at=self.clock(),
            timing=timing,
            nsfw=faults.nsfw,
            hang=faults.hang,
            missing_output=faults.missing_output,
            webhook=webhook,
            model=model.name,
            server=self.storage.server_id,
            clock=self.clock,
            retention=self.retention,
        )
        problem = refuse_address(image_url)
        if faults.failure is not None:
            record.failure = TaskFailure(*faults.failure, at=record.due_at)
        elif record.hang:
            pass  # it stays processing: nothing to fetch or render
        elif problem is not None:
            record.failure = TaskFailure(1402, problem, at=record.processing_at)
        elif self._placeholder is not None:
            record.render = RenderDone(self._placeholder, record.created_at)
        # On disk before anyone hears of it: a restart after the answer can still finish it.
        self.storage.save(record)
        with self._lock:
            self._tasks[record.id] = record
            self.created_task_ids.append(record.id)
        if record.needs_render:
            self._pool.submit(self._make_video, record)
        if webhook:
            self.pusher.watch(record.id, record.due_at)
        log.info("task %s created (seed %d)", record.id, seed)
        return record

    def fetch_image(self, url: str, *, restored: bool = False) -> bytes:
        """The image a task names (its URL already allowed by `refuse_address`); blocking."""
        return fetch_image(url, self.storage, self._http, own_port=self.port, restored=restored)

    def _make_video(self, record: TaskRecord, restored: bool = False) -> None:
        """Worker: fetch the task's image and render (or reuse) its preview, the camera moving as
        its seed and prompt say (moves.camera_move)."""
        try:
            image = self.fetch_image(record.image_url, restored=restored)
            move = camera_move(record.seed, record.prompt)
            video = self._renders.render_once(image, self.model_of(record), move)
        except ImageUnavailable as exc:
            record.failure = TaskFailure(1402, str(exc), at=self.clock())
        except NotAnImage:
            message = "The image URL does not point to a picture that can be read (JPG, PNG, WebP...)."
            record.failure = TaskFailure(1402, message, at=self.clock())
        except Exception:
            log.exception("rendering the preview for task %s failed", record.id)
            record.failure = TaskFailure(5000, "Internal error while rendering the preview.", at=self.clock())
        else:
            record.render = RenderDone(video, self.clock())
        self.storage.save(record)


def serve(
    port: int,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    timing: TaskTiming = TaskTiming(),
    data_dir: Path | None = None,
    models: tuple[ModelSpec, ...] = VIDEO_MODELS,
    limits: Limits | None = None,
) -> None:
    """Serve the local backend in the foreground until interrupted (`python -m skyreels_demo local-api`)."""
    backend = LocalBackend(
        api_key=api_key, timing=timing, data_dir=data_dir, host=host, port=port, models=models, limits=limits
    )
    sock, server = backend._prepare(log_level="info")
    log.info("local WaveSpeed-compatible backend at %s (data in %s)", backend.base_url, backend.data_dir)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it already handled; a stopped server is a normal end.
        log.info("local backend stopped")
    finally:
        backend.storage.close()  # its tasks are anyone's to answer now
        backend._pool.shutdown(wait=False, cancel_futures=True)


def _awaits_webhook(record: TaskRecord, now: float) -> bool:
    """Whether a task asked for a webhook and has yet to end (so the pusher must watch it)."""
    return bool(record.webhook) and record.status_at(now) not in (ApiWord.COMPLETED, ApiWord.FAILED, ApiWord.DELETED)
