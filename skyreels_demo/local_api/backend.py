"""The built-in WaveSpeed-compatible backend: offline preview for the app, a real server for tests.

It speaks the endpoints and envelopes of `wavespeed-api.md` over loopback HTTP, walks each task
through created, processing and completed on a clock, and renders a preview MP4 from the
uploaded image. Fault switches (`LocalBackend.faults`) make it misbehave on purpose, one
request at a time, so the client's retries and error sentences can be tested for real.

Like WaveSpeed, it keeps tasks across restarts: every task is stored as JSON under
`<data_dir>/tasks/`, and a new backend on the same data directory (on any port) answers for the
tasks of the old one, finishing renders that a crash interrupted. Tasks, uploads and renders
older than seven days are deleted when it starts.

    with LocalBackend(timing=TaskTiming(0.2, 0.5)) as backend:
        client = Client(base_url=backend.base_url, api_key="anything")
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
import random
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.local_api.render import NotAnImage, render_preview

log = logging.getLogger(__name__)

KINDS = ("upload", "submit", "result", "file")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MODEL = SKYREELS_V1.name
MIN_SEED, MAX_SEED = SKYREELS_V1.seed_range
RENDER_WORKERS = 2
# Formats the API documents for image uploads, by Pillow's name, with the extension we store.
IMAGE_EXTENSIONS = {
    "JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp",
    "GIF": "gif", "BMP": "bmp", "TIFF": "tiff",
}
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,8}")
_OUTPUT_NAME = re.compile(r"([0-9a-f]{32})\.mp4")
_TASK_FILE = re.compile(r"([0-9a-f]{32})\.json")
_RENDER_NAME = re.compile(r"[0-9a-f]{64}\.mp4|placeholder\.mp4")
UPLOADS_PATH = "/files/uploads/"
# WaveSpeed deletes predictions and their outputs after 7 days; so does this backend, on start.
RETENTION_S = 7 * 24 * 3600
TASK_FILE_VERSION = 1


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTiming:
    """Seconds a task spends in each state."""

    queue_s: float = 1.0  # created -> processing
    processing_s: float = 3.0  # processing -> completed

    def __post_init__(self) -> None:
        if self.queue_s < 0 or self.processing_s < 0:
            raise ValueError("task timings must not be negative")


@dataclass(frozen=True)
class TaskFailure:
    code: int
    message: str
    at: float  # time.time() from which the task reads as failed


@dataclass(frozen=True)
class RenderDone:
    path: Path
    at: float  # time.time() when the video file was ready


@dataclass(eq=False)
class TaskRecord:
    """The server's record of one task; its status is read off the clock."""

    id: str
    prompt: str
    seed: int
    image_url: str
    created_at: float
    timing: TaskTiming
    nsfw: bool = False
    hang: bool = False
    missing_output: bool = False
    # Each is set once, by a single assignment, so readers on other threads see all or nothing.
    failure: TaskFailure | None = None
    render: RenderDone | None = None

    @property
    def processing_at(self) -> float:
        return self.created_at + self.timing.queue_s

    @property
    def due_at(self) -> float:
        """When the clock says it is done, if the video is ready by then."""
        return self.processing_at + self.timing.processing_s

    def status_at(self, now: float) -> str:
        if now < self.processing_at:
            return "created"
        if self.failure is not None and now >= self.failure.at:
            return "failed"
        if self.hang or self.failure is not None:
            return "processing"
        render = self.render
        if render is not None and now >= max(self.due_at, render.at):
            return "completed"
        return "processing"

    @property
    def status(self) -> str:
        return self.status_at(time.time())

    @property
    def completed_at(self) -> float | None:
        """time.time() at which it became completed; None until then."""
        render = self.render
        if render is None or self.failure is not None or self.hang:
            return None
        done = max(self.due_at, render.at)
        return done if time.time() >= done else None

    @property
    def failed_at(self) -> float | None:
        failure = self.failure
        if failure is None or time.time() < max(failure.at, self.processing_at):
            return None
        return max(failure.at, self.processing_at)


# --- fault switches --------------------------------------------------------------------------


@dataclass(frozen=True)
class _CannedAnswer:
    """An answer that replaces (or, with truncate, mangles) the real one for one request."""

    status: int = 200
    code: int = 200
    message: str = ""
    retry_after: float | None = None
    truncate: bool = False

    def response(self) -> Response:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = _seconds(self.retry_after)
        return _error(self.status, self.code, self.message, headers=headers)


@dataclass(frozen=True)
class _TaskFaults:
    failure: tuple[int, str] | None = None
    hang: bool = False
    nsfw: bool = False
    missing_output: bool = False


class Faults:
    """Switches that make the next matching requests or tasks misbehave; each use consumes one.

    Request faults queue per kind ("upload", "submit", "result", "file") in the order they were
    armed; `slow` queues separately and delays whatever answer the request gets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, collections.deque[_CannedAnswer]] = {k: collections.deque() for k in KINDS}
        self._delays: dict[str, collections.deque[float]] = {k: collections.deque() for k in KINDS}
        self._task_failures: collections.deque[tuple[int, str]] = collections.deque()
        self._hangs = 0
        self._nsfw = 0
        self._missing_outputs = 0

    def rate_limit(self, kind: str, times: int = 1, retry_after: float | None = 1.0) -> None:
        """The next `times` calls of `kind` get HTTP 429, with Retry-After unless None.

        Nothing is created by a refused call.
        """
        answer = _CannedAnswer(429, 429, "Too many requests: rate limit exceeded, slow down.", retry_after)
        self._queue(kind, [answer] * times)

    def server_errors(self, kind: str, statuses: tuple[int, ...] = (500, 502, 503, 504)) -> None:
        """The next len(statuses) calls of `kind` get those HTTP statuses, in order."""
        answers = [_CannedAnswer(s, s, f"Server error {s}: please try again later.") for s in statuses]
        self._queue(kind, answers)

    def envelope_error(
        self, kind: str, code: int = 500, message: str = "internal error", times: int = 1
    ) -> None:
        """The next `times` calls of `kind` get HTTP 200 whose envelope code is `code`."""
        self._queue(kind, [_CannedAnswer(200, code, message)] * times)

    def truncate(self, kind: str, times: int = 1) -> None:
        """The next `times` calls of `kind` are handled, but only half the body is sent."""
        self._queue(kind, [_CannedAnswer(truncate=True)] * times)

    def slow(self, kind: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `kind` wait `seconds` before answering.

        A slow submit creates its task first, as a real one whose answer is lost would.
        """
        _check_kind(kind)
        with self._lock:
            self._delays[kind].extend([float(seconds)] * times)

    def fail_next_task(self, code: int = 5000, message: str = "Internal error") -> None:
        """The next submitted task goes created -> processing -> failed with this code and error."""
        with self._lock:
            self._task_failures.append((code, message))

    def hang_next_task(self) -> None:
        """The next submitted task stays "processing" forever."""
        with self._lock:
            self._hangs += 1

    def missing_output(self, times: int = 1) -> None:
        """The next tasks that complete list an output URL that answers 404."""
        with self._lock:
            self._missing_outputs += times

    def nsfw_next_task(self) -> None:
        """The next submitted task completes with has_nsfw_contents [true]."""
        with self._lock:
            self._nsfw += 1

    def clear(self) -> None:
        """Disarm every switch."""
        with self._lock:
            for kind in KINDS:
                self._answers[kind].clear()
                self._delays[kind].clear()
            self._task_failures.clear()
            self._hangs = self._nsfw = self._missing_outputs = 0

    def _queue(self, kind: str, answers: list[_CannedAnswer]) -> None:
        _check_kind(kind)
        with self._lock:
            self._answers[kind].extend(answers)

    def _take(self, kind: str) -> tuple[float, _CannedAnswer | None]:
        with self._lock:
            delay = self._delays[kind].popleft() if self._delays[kind] else 0.0
            answer = self._answers[kind].popleft() if self._answers[kind] else None
        return delay, answer

    def _take_task(self) -> _TaskFaults:
        with self._lock:
            failure = self._task_failures.popleft() if self._task_failures else None
            hang = failure is None and self._hangs > 0
            self._hangs -= hang
            nsfw = self._nsfw > 0
            self._nsfw -= nsfw
            # Only a task that can complete uses up a missing output.
            missing = failure is None and not hang and self._missing_outputs > 0
            self._missing_outputs -= missing
        return _TaskFaults(failure, hang, nsfw, missing)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; use one of {', '.join(KINDS)}")


# --- the backend -----------------------------------------------------------------------------


class ImageUnavailable(Exception):
    """The task's image could not be fetched; str() is the sentence the task fails with."""


class LocalBackend:
    """A WaveSpeed-compatible server for SkyReels V1 on a loopback port, in a background thread.

    `api_key=None` accepts any non-empty Bearer token. Once stopped it cannot be started again.
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
    ) -> None:
        self._api_key = api_key
        self._timing = timing
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="skyreels-local-"))
        self.data_dir = Path(data_dir)
        self._uploads_dir = self.data_dir / "uploads"
        self._renders_dir = self.data_dir / "renders"
        self._tasks_dir = self.data_dir / "tasks"
        for folder in (self._uploads_dir, self._renders_dir, self._tasks_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.render = render
        self.base_url = ""
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults = Faults()
        self.created_task_ids: list[str] = []
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskRecord] = {}
        self._render_jobs: dict[str, Future[Path]] = {}
        # Serialises task-file writes, so the last write of a record carries its latest state.
        self._store_lock = threading.Lock()
        self._stopped = False  # a stopped backend writes nothing more, like a dead process
        self._restored = False
        self._pool = ThreadPoolExecutor(max_workers=RENDER_WORKERS, thread_name_prefix="preview-render")
        self._placeholder: Path | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # Never let an environment proxy carry a loopback fetch off this machine.
        self._http = requests.Session()
        self._http.trust_env = False
        self.app = self._build_app()

    # -- lifecycle --

    def start(self) -> LocalBackend:
        """Serve in a daemon thread; return once the server answers."""
        if self._thread is not None:
            return self
        sock, server = self._prepare(log_level="warning")
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"local-api:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local backend did not start on {self.base_url}")
            time.sleep(0.01)
        self._http.get(self.base_url + "/", timeout=5).raise_for_status()
        log.info("local backend serving at %s (data in %s)", self.base_url, self.data_dir)
        return self

    def stop(self) -> None:
        with self._store_lock:
            self._stopped = True
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
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{_url_host(self.host)}:{self.port}"
        if not self.render:
            self._placeholder = self._render_placeholder()
        self._restore()
        embedded = log_level == "warning"
        config = uvicorn.Config(
            self.app,
            log_level=log_level,
            access_log=not embedded,
            # Embedded in the app or a test, leave the host program's logging alone.
            log_config=None if embedded else uvicorn.config.LOGGING_CONFIG,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        return sock, uvicorn.Server(config)

    # -- inspection --

    def task(self, task_id: str) -> TaskRecord:
        """The server-side record of a task (KeyError if there is none)."""
        return self._tasks[task_id]

    @property
    def tasks_created(self) -> int:
        return len(self.created_task_ids)

    # -- tasks --

    def _create_task(self, prompt: str, image_url: str, seed: int) -> TaskRecord:
        timing = self._timing if isinstance(self._timing, TaskTiming) else self._timing()
        if seed == -1:
            seed = random.randint(0, MAX_SEED)
        faults = self.faults._take_task()
        record = TaskRecord(
            id=uuid.uuid4().hex,
            prompt=prompt,
            seed=seed,
            image_url=image_url,
            created_at=time.time(),
            timing=timing,
            nsfw=faults.nsfw,
            hang=faults.hang,
            missing_output=faults.missing_output,
        )
        problem = _refuse_address(image_url)
        if faults.failure is not None:
            record.failure = TaskFailure(*faults.failure, at=record.due_at)
        elif record.hang:
            pass  # it stays processing: nothing to fetch or render
        elif problem is not None:
            record.failure = TaskFailure(1402, problem, at=record.processing_at)
        elif self._placeholder is not None:
            record.render = RenderDone(self._placeholder, record.created_at)
        # On disk before anyone hears of it: a restart after the answer can still finish it.
        self._save(record)
        with self._lock:
            self._tasks[record.id] = record
            self.created_task_ids.append(record.id)
        if _needs_render(record):
            self._pool.submit(self._make_video, record)
        log.info("task %s created (seed %d)", record.id, seed)
        return record

    def _make_video(self, record: TaskRecord, restored: bool = False) -> None:
        """Worker: fetch the task's image and render (or reuse) its preview."""
        try:
            video = self._render_once(self._fetch_image(record.image_url, restored=restored))
        except ImageUnavailable as exc:
            record.failure = TaskFailure(1402, str(exc), at=time.time())
        except NotAnImage:
            message = "The image URL does not point to a picture that can be read (JPG, PNG, WebP...)."
            record.failure = TaskFailure(1402, message, at=time.time())
        except Exception:
            log.exception("rendering the preview for task %s failed", record.id)
            record.failure = TaskFailure(5000, "Internal error while rendering the preview.", at=time.time())
        else:
            record.render = RenderDone(video, time.time())
        self._save(record)

    def _render_once(self, image: bytes) -> Path:
        """The preview for these image bytes; rendered once per distinct image, then shared."""
        digest = hashlib.sha256(image).hexdigest()
        with self._lock:
            job = self._render_jobs.get(digest)
            mine = job is None
            if mine:
                job = self._render_jobs[digest] = Future()
        if not mine:
            return job.result()
        dest = self._renders_dir / f"{digest}.mp4"
        try:
            if not dest.is_file():
                render_preview(image, dest)
        except BaseException as exc:
            with self._lock:
                del self._render_jobs[digest]  # let a later task try again
            job.set_exception(exc)
            raise
        job.set_result(dest)
        return dest

    def _render_placeholder(self) -> Path:
        """One tiny valid MP4 that every task shares when rendering is off."""
        picture = Image.linear_gradient("L").resize((128, 72)).convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return render_preview(buffer.getvalue(), self._renders_dir / "placeholder.mp4", frame=(128, 72))

    def _fetch_image(self, url: str, *, restored: bool = False) -> bytes:
        """The image bytes behind `url`, which `_refuse_address` has already allowed.

        `restored`: the task comes from an earlier run of this backend, so its URL names the
        port that run listened on; an upload of ours it names is read from storage all the same.
        """
        parts = urlsplit(url)
        if self._names_own_upload(parts) or (restored and self._names_kept_upload(parts)):
            # Our own upload: read it from storage rather than calling ourselves over HTTP.
            name = parts.path.removeprefix(UPLOADS_PATH)
            path = self._uploads_dir / name
            if not _STORED_NAME.fullmatch(name) or not path.is_file():
                raise ImageUnavailable(
                    "The image could not be downloaded: the server answered 404 Not Found."
                )
            return path.read_bytes()
        try:
            with self._http.get(url, timeout=(3, 10), stream=True, allow_redirects=False) as answer:
                if answer.status_code != 200:
                    raise ImageUnavailable(
                        f"The image could not be downloaded: the server answered {answer.status_code}."
                    )
                data = answer.raw.read(MAX_UPLOAD_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise ImageUnavailable(f"The image could not be downloaded: {type(exc).__name__}.") from exc
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageUnavailable("The image could not be downloaded: it is larger than 20 MB.")
        return data

    def _names_own_upload(self, parts: Any) -> bool:
        """Whether the URL points at this server's uploads."""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        return (
            port == self.port
            and parts.path.startswith(UPLOADS_PATH)
            and _is_loopback(parts.hostname or "")
        )

    def _names_kept_upload(self, parts: Any) -> bool:
        """Whether the URL names, on a loopback host and any port, an upload stored here."""
        name = parts.path.removeprefix(UPLOADS_PATH)
        return (
            parts.path.startswith(UPLOADS_PATH)
            and _STORED_NAME.fullmatch(name) is not None
            and _is_loopback(parts.hostname or "")
            and (self._uploads_dir / name).is_file()
        )

    # -- keeping tasks across restarts --

    def _save(self, record: TaskRecord) -> None:
        """Write the task's record to tasks/<id>.json, atomically.

        Best effort: a disk that refuses the write costs the task its life after a restart, not
        its answer now.
        """
        with self._store_lock:
            if self._stopped:
                return
            text = json.dumps(_task_to_json(record), indent=1)
            path = self._tasks_dir / f"{record.id}.json"
            try:
                fd, tmp_name = tempfile.mkstemp(dir=self._tasks_dir, prefix=f".{record.id}.", suffix=".tmp")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as file:
                        file.write(text)
                        file.flush()
                        os.fsync(file.fileno())
                    os.replace(tmp_name, path)
                except BaseException:
                    Path(tmp_name).unlink(missing_ok=True)
                    raise
            except OSError:
                log.exception("could not store task %s in %s", record.id, self._tasks_dir)

    def _restore(self) -> None:
        """Load the stored tasks (once), delete what is older than 7 days, resume unfinished renders."""
        if self._restored:
            return
        self._restored = True
        now = time.time()
        kept: list[TaskRecord] = []
        for path in sorted(self._tasks_dir.glob("*.json")):
            match = _TASK_FILE.fullmatch(path.name)
            try:
                record = _task_from_json(json.loads(path.read_text(encoding="utf-8")), self._renders_dir)
                if match is None or record.id != match[1]:
                    raise ValueError("the file name does not match the task id")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("ignoring the unreadable task file %s: %s", path, exc)
                _delete_if_older(path, now)
                continue
            if now - record.created_at > RETENTION_S:
                path.unlink(missing_ok=True)
                continue
            kept.append(record)

        # Housekeeping: old uploads and renders go, unless a task that stays still needs them.
        needed: dict[Path, set[str]] = {self._uploads_dir: set(), self._renders_dir: set()}
        for record in kept:
            try:
                path = urlsplit(record.image_url).path
            except ValueError:
                path = ""
            if path.startswith(UPLOADS_PATH):
                needed[self._uploads_dir].add(path.removeprefix(UPLOADS_PATH))
            if record.render is not None:
                needed[self._renders_dir].add(record.render.path.name)
        # The task files that stay were sorted out above; what else is in tasks/ is debris.
        needed[self._tasks_dir] = {f"{record.id}.json" for record in kept}
        for folder, names in needed.items():
            for path in folder.iterdir():
                if path.name not in names:
                    _delete_if_older(path, now)

        resumed = 0
        for record in kept:
            if record.render is not None and not record.render.path.is_file():
                log.warning("the preview of task %s is gone; rendering it again", record.id)
                record.render = None
            with self._lock:
                if record.id in self._tasks:
                    continue
                self._tasks[record.id] = record
            if _needs_render(record):
                resumed += 1
                if self._placeholder is not None:
                    record.render = RenderDone(self._placeholder, record.created_at)
                    self._save(record)
                else:
                    self._pool.submit(self._make_video, record, True)
        if kept:
            log.info("restored %d stored tasks (%d to finish rendering)", len(kept), resumed)

    def _store_upload(self, data: bytes, filename: str) -> tuple[str, str]:
        """Save an upload; return its type ("image" or "file") and stored name."""
        try:
            with Image.open(io.BytesIO(data)) as picture:
                image_format = picture.format
        except Exception:
            image_format = None
        if image_format in IMAGE_EXTENSIONS:
            kind, ext = "image", IMAGE_EXTENSIONS[image_format]
        else:
            suffix = Path(filename).suffix.lower().lstrip(".")
            kind, ext = "file", suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else "bin"
        name = f"{uuid.uuid4().hex}.{ext}"
        (self._uploads_dir / name).write_bytes(data)
        return kind, name

    def _task_data(self, record: TaskRecord, now: float) -> dict[str, Any]:
        status = record.status_at(now)
        data: dict[str, Any] = {
            "id": record.id,
            "model": MODEL,
            "outputs": [],
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{record.id}/result"},
            "has_nsfw_contents": [],
            "status": status,
            "created_at": _iso(record.created_at),
            "error": "",
            "timings": {"inference": 0},
        }
        if status == "completed":
            done = max(record.due_at, record.render.at)  # type: ignore[union-attr]
            data["outputs"] = [f"{self.base_url}/files/outputs/{record.id}.mp4"]
            data["has_nsfw_contents"] = [record.nsfw]
            data["timings"] = {"inference": round((done - record.processing_at) * 1000)}
        elif status == "failed":
            data["error"] = record.failure.message  # type: ignore[union-attr]
            data["code"] = record.failure.code  # type: ignore[union-attr]
        return data

    # -- HTTP --

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def _refuse_unauthorised(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _error(401, 401, "Unauthorized: send the header 'Authorization: Bearer <API key>'.")
        if self._api_key is not None and not hmac.compare_digest(token.encode(), self._api_key.encode()):
            return _error(401, 401, "Unauthorized: the API key is not valid.")
        return None

    async def _answer(
        self, kind: str, request: Request, build: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Count the request, check the key, then apply any armed fault around the real answer."""
        self._count(kind)
        if kind != "file":
            refused = self._refuse_unauthorised(request)
            if refused is not None:
                return refused
        delay, canned = self.faults._take(kind)
        if canned is not None and not canned.truncate:
            response = canned.response()
        else:
            response = await build()
            if canned is not None:
                response = await _truncated(response)
        if delay:
            await asyncio.sleep(delay)
        return response

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="SkyReels V1 Studio: offline preview backend", docs_url=None, redoc_url=None)

        @app.exception_handler(StarletteHTTPException)
        async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
            return _error(exc.status_code, exc.status_code, str(exc.detail))

        @app.exception_handler(RequestValidationError)
        async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
            return _error(400, 1401, "The request does not fit the schema.")

        @app.get("/")
        async def about() -> Response:
            about = {"name": "SkyReels V1 Studio offline preview", "model": MODEL}
            return JSONResponse(_envelope(200, "success", about))

        @app.post("/api/v3/media/upload/binary")
        async def upload(request: Request) -> Response:
            async def build() -> Response:
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 1024 * 1024:
                    return _error(413, 413, "The file is larger than 20 MB.")
                try:
                    form = await request.form(max_files=4)
                except Exception as exc:
                    return _error(400, 400, f"Send the file as multipart/form-data ({exc}).")
                try:
                    file = form.get("file")
                    if not isinstance(file, UploadFile):
                        return _error(400, 400, "No file: send it in the multipart form field 'file'.")
                    data = await file.read(MAX_UPLOAD_BYTES + 1)
                    filename = Path(file.filename or "").name
                finally:
                    await form.close()
                if len(data) > MAX_UPLOAD_BYTES:
                    return _error(413, 413, "The file is larger than 20 MB.")
                if not data:
                    return _error(400, 400, "The file is empty.")
                kind, name = await run_in_threadpool(self._store_upload, data, filename)
                return JSONResponse(_envelope(200, "success", {
                    "type": kind,
                    "download_url": f"{self.base_url}/files/uploads/{name}",
                    "filename": filename or name,
                    "size": len(data),
                }))

            return await self._answer("upload", request, build)

        @app.post(SKYREELS_V1.path)
        async def submit(request: Request) -> Response:
            async def build() -> Response:
                try:
                    body = json.loads(await request.body() or b"null")
                except ValueError:
                    return _error(400, 1401, "The request body is not valid JSON.")
                problem = _refuse_submission(body)
                if problem is not None:
                    return _error(400, *problem)
                seed = body.get("seed")
                record = await run_in_threadpool(
                    self._create_task, body["prompt"], body["image"], -1 if seed is None else seed
                )
                return JSONResponse(_envelope(200, "success", self._task_data(record, time.time())))

            return await self._answer("submit", request, build)

        async def result(task_id: str, request: Request) -> Response:
            async def build() -> Response:
                record = self._tasks.get(task_id)
                if record is None:
                    return _error(404, 404, "No task with that id was found.")
                return JSONResponse(_envelope(200, "success", self._task_data(record, time.time())))

            return await self._answer("result", request, build)

        app.add_api_route("/api/v3/predictions/{task_id}/result", result, methods=["GET"])
        app.add_api_route("/api/v3/predictions/{task_id}", result, methods=["GET"])

        @app.api_route("/files/uploads/{name}", methods=["GET", "HEAD"])
        async def uploaded_file(name: str, request: Request) -> Response:
            async def build() -> Response:
                path = self._uploads_dir / name
                if not _STORED_NAME.fullmatch(name) or not path.is_file():
                    return _error(404, 404, "File not found.")
                return FileResponse(path)

            return await self._answer("file", request, build)

        @app.api_route("/files/outputs/{name}", methods=["GET", "HEAD"])
        async def output_file(name: str, request: Request) -> Response:
            async def build() -> Response:
                match = _OUTPUT_NAME.fullmatch(name)
                record = self._tasks.get(match[1]) if match else None
                if record is None or record.missing_output or record.status_at(time.time()) != "completed":
                    return _error(404, 404, "File not found.")
                return FileResponse(record.render.path, media_type="video/mp4")  # type: ignore[union-attr]

            return await self._answer("file", request, build)

        return app


def serve(
    port: int,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    timing: TaskTiming = TaskTiming(),
    data_dir: Path | None = None,
) -> None:
    """Serve the local backend in the foreground until interrupted (`python -m skyreels_demo local-api`)."""
    backend = LocalBackend(api_key=api_key, timing=timing, data_dir=data_dir, host=host, port=port)
    sock, server = backend._prepare(log_level="info")
    log.info("local WaveSpeed-compatible backend at %s (data in %s)", backend.base_url, backend.data_dir)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it already handled; a stopped server is a normal end.
        log.info("local backend stopped")
    finally:
        backend._pool.shutdown(wait=False, cancel_futures=True)


# --- helpers ---------------------------------------------------------------------------------


def _envelope(code: int, message: str, data: Any, error: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "data": data}
    if error is not None:
        body["error"] = error
    return body


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_envelope(code, message, None, error=message), status_code=status, headers=headers)


async def _truncated(response: Response) -> Response:
    if isinstance(response, FileResponse):
        body = await run_in_threadpool(Path(response.path).read_bytes)
    else:
        body = bytes(response.body)
    return Response(body[: len(body) // 2], status_code=response.status_code, media_type=response.media_type)


def _refuse_submission(body: Any) -> tuple[int, str] | None:
    """(API code, sentence) when a submit body does not fit the schema, else None."""
    if not isinstance(body, dict):
        return 1401, "The request body must be a JSON object."
    for name in ("prompt", "image"):
        value = body.get(name)
        if value is None or value == "" or (isinstance(value, str) and not value.strip()):
            return 1400, f"Missing required parameter: {name}."
        if not isinstance(value, str):
            return 1401, f"Invalid parameter: {name} must be a string."
    seed = body.get("seed")
    # bool is an int subclass in Python but not an integer in JSON.
    seed_is_int = isinstance(seed, int) and not isinstance(seed, bool)
    if seed is not None and (not seed_is_int or not MIN_SEED <= seed <= MAX_SEED):
        return 1401, f"Invalid parameter: seed must be an integer from {MIN_SEED} to {MAX_SEED}."
    return None


def _refuse_address(url: str) -> str | None:
    """Why the image at `url` may not be fetched (only loopback hosts are), or None.

    Decided from the URL text alone: no DNS lookup and no connection is made for a refused URL.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "The image could not be downloaded: the image URL is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "The image could not be downloaded: the image URL must be an http(s) address."
    if not _is_loopback(host):
        return (
            f"The image could not be downloaded: the offline preview only fetches images from "
            f"this computer, not from {host}."
        )
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _url_host(host: str) -> str:
    """How a client on this machine should name the bound host in a URL."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _needs_render(record: TaskRecord) -> bool:
    return record.render is None and record.failure is None and not record.hang


def _task_to_json(record: TaskRecord) -> dict[str, Any]:
    failure, render = record.failure, record.render
    return {
        "version": TASK_FILE_VERSION,
        "id": record.id,
        "prompt": record.prompt,
        "seed": record.seed,
        "image_url": record.image_url,
        "created_at": record.created_at,
        "timing": {"queue_s": record.timing.queue_s, "processing_s": record.timing.processing_s},
        "nsfw": record.nsfw,
        "hang": record.hang,
        "missing_output": record.missing_output,
        "failure": (
            None if failure is None else {"code": failure.code, "message": failure.message, "at": failure.at}
        ),
        # Only the name: renders always live in the data directory's renders/, wherever it moves.
        "render": None if render is None else {"file": render.path.name, "at": render.at},
    }


def _task_from_json(data: dict[str, Any], renders_dir: Path) -> TaskRecord:
    """The record stored by `_task_to_json`; ValueError, KeyError or TypeError if it is not one."""
    if data.get("version") != TASK_FILE_VERSION:
        raise ValueError(f"unknown task file version {data.get('version')!r}")
    failure, render = data["failure"], data["render"]
    if render is not None and not _RENDER_NAME.fullmatch(render["file"]):
        raise ValueError(f"unexpected render file name {render['file']!r}")
    seed = data["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError("the seed is not an integer")
    return TaskRecord(
        id=str(data["id"]),
        prompt=str(data["prompt"]),
        seed=seed,
        image_url=str(data["image_url"]),
        created_at=float(data["created_at"]),
        timing=TaskTiming(float(data["timing"]["queue_s"]), float(data["timing"]["processing_s"])),
        nsfw=bool(data["nsfw"]),
        hang=bool(data["hang"]),
        missing_output=bool(data["missing_output"]),
        failure=None if failure is None else TaskFailure(
            int(failure["code"]), str(failure["message"]), float(failure["at"])
        ),
        render=None if render is None else RenderDone(renders_dir / render["file"], float(render["at"])),
    )


def _delete_if_older(path: Path, now: float, age_s: float = RETENTION_S) -> None:
    """Delete the file if it was last changed more than `age_s` ago; leave anything else."""
    try:
        if path.is_file() and now - path.stat().st_mtime > age_s:
            path.unlink()
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    # Whole seconds as HTTP specifies; a fraction is kept only when asked for (keeps tests fast).
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
