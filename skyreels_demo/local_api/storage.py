"""Keeping tasks, uploads and renders on disk, so a restarted backend answers for them.

Like WaveSpeed, the backend keeps tasks across restarts: every task is stored as JSON under
`<data_dir>/tasks/`, uploads under `uploads/` and preview videos under `renders/`. What is older
than seven days is deleted when a backend starts on the directory.

Several backends may share one directory (the app's offline preview and a command line's, each
in its own process). Each task names the backend that made it, and a serving backend holds a
lock on `servers/<its id>.lock` (released when it stops or its process ends): a task whose
backend still serves is that backend's to answer, and another leaves it alone; a task whose
backend is gone is answered by whichever backend asks for it next.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from skyreels_demo.local_api.clock import RETENTION_S, RenderDone, TaskFailure, TaskRecord, TaskTiming

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# Where uploads are served; a task whose image URL has this path may need a stored upload.
UPLOADS_PATH = "/files/uploads/"
# Formats the API documents for image uploads, by Pillow's name, with the extension we store.
IMAGE_EXTENSIONS = {
    "JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp",
    "GIF": "gif", "BMP": "bmp", "TIFF": "tiff",
}
# WaveSpeed deletes predictions and their outputs after 7 days (RETENTION_S); so does this
# backend, on start.
TASK_FILE_VERSION = 1
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,8}")
_TASK_FILE = re.compile(r"([0-9a-f]{32})\.json")
_TASK_ID = re.compile(r"[0-9a-f]{32}")
_RENDER_NAME = re.compile(r"[0-9a-f]{64}\.mp4|placeholder\.mp4")
_SERVER_ID = re.compile(r"[0-9a-f]{32}")

try:  # POSIX; elsewhere every backend counts as gone and any backend answers any stored task
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class Storage:
    """The backend's data directory: tasks/, uploads/ and renders/."""

    def __init__(self, data_dir: Path | None) -> None:
        # Given no folder, a temporary one of its own, removed on close: nothing in it outlives
        # the backend (one whose tasks or renders are kept is given a folder).
        self._own_dir = data_dir is None
        data_dir = Path(tempfile.mkdtemp(prefix="skyreels-local-")) if data_dir is None else data_dir
        self.data_dir = data_dir
        self.uploads_dir = data_dir / "uploads"
        self.renders_dir = data_dir / "renders"
        self.tasks_dir = data_dir / "tasks"
        self.servers_dir = data_dir / "servers"
        for folder in (self.uploads_dir, self.renders_dir, self.tasks_dir, self.servers_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # This backend's own id, named by every task it makes, and its lock while it serves.
        self.server_id = secrets.token_hex(16)
        self._server_lock: Any = None
        # Serialises task-file writes, so the last write of a record carries its latest state.
        self._lock = threading.Lock()
        self._closed = False  # a stopped backend writes nothing more, like a dead process

    def close(self) -> None:
        """Write no more task files, even from renders that finish later; stop serving."""
        with self._lock:
            self._closed = True
        self.release_server()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- which backend answers for a task --

    def hold_server(self) -> None:
        """Say, for as long as this backend serves, that its tasks are its own to answer."""
        if fcntl is None or self._server_lock is not None:
            return
        path = self.servers_dir / f"{self.server_id}.lock"
        handle = open(path, "a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise
        self._server_lock = handle

    def release_server(self) -> None:
        handle, self._server_lock = self._server_lock, None
        if handle is not None:
            (self.servers_dir / f"{self.server_id}.lock").unlink(missing_ok=True)
            handle.close()  # the lock goes with it

    def serving_elsewhere(self, server_id: str) -> bool:
        """Whether another backend named `server_id` still serves (holds its lock), in any process."""
        if fcntl is None or not server_id or server_id == self.server_id or not _SERVER_ID.fullmatch(server_id):
            return False
        path = self.servers_dir / f"{server_id}.lock"
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return False  # stopped: it took its lock away
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                return False
            # Nobody held it: that backend's process ended without stopping. Its file goes.
            path.unlink(missing_ok=True)
            return False

    def stored_task(self, task_id: str) -> TaskRecord | None:
        """The task stored as `tasks/<task_id>.json` (by any backend), or None."""
        if not _TASK_ID.fullmatch(task_id or ""):
            return None
        path = self.tasks_dir / f"{task_id}.json"
        try:
            record = _task_from_json(json.loads(path.read_text(encoding="utf-8")), self.renders_dir)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the unreadable task file %s: %s", path, exc)
            return None
        if record.id != task_id or time.time() - record.created_at > RETENTION_S:
            return None
        if record.render is not None and not record.render.path.is_file():
            record.render = None  # rendered again by whoever answers for it
        return record

    def save(self, record: TaskRecord) -> None:
        """Write the task's record to tasks/<id>.json, atomically.

        Best effort: a disk that refuses the write costs the task its life after a restart, not
        its answer now.
        """
        with self._lock:
            if self._closed:
                return
            text = json.dumps(_task_to_json(record), indent=1)
            path = self.tasks_dir / f"{record.id}.json"
            try:
                fd, tmp_name = tempfile.mkstemp(dir=self.tasks_dir, prefix=f".{record.id}.", suffix=".tmp")
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
                log.exception("could not store task %s in %s", record.id, self.tasks_dir)

    def restore(self) -> list[TaskRecord]:
        """The stored tasks younger than 7 days; deletes older ones and what no kept task needs.

        A kept task whose preview file is gone comes back without one, to be rendered again.
        """
        now = time.time()
        kept: list[TaskRecord] = []
        for path in sorted(self.tasks_dir.glob("*.json")):
            match = _TASK_FILE.fullmatch(path.name)
            try:
                record = _task_from_json(json.loads(path.read_text(encoding="utf-8")), self.renders_dir)
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
        needed: dict[Path, set[str]] = {self.uploads_dir: set(), self.renders_dir: set()}
        for record in kept:
            try:
                path = urlsplit(record.image_url).path
            except ValueError:
                path = ""
            if path.startswith(UPLOADS_PATH):
                needed[self.uploads_dir].add(path.removeprefix(UPLOADS_PATH))
            if record.render is not None:
                needed[self.renders_dir].add(record.render.path.name)
        # The task files that stay were sorted out above; what else is in tasks/ is debris.
        needed[self.tasks_dir] = {f"{record.id}.json" for record in kept}
        for folder, names in needed.items():
            for path in folder.iterdir():
                if path.name not in names:
                    _delete_if_older(path, now)

        for record in kept:
            if record.render is not None and not record.render.path.is_file():
                log.warning("the preview of task %s is gone; rendering it again", record.id)
                record.render = None
        return kept

    def store_upload(self, data: bytes, filename: str) -> tuple[str, str]:
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
        (self.uploads_dir / name).write_bytes(data)
        return kind, name

    def store_upload_as(self, name: str, data: bytes) -> None:
        """Save an upload under a name given out beforehand (the two-step upload's ticket)."""
        if not _STORED_NAME.fullmatch(name):
            raise ValueError(f"not a stored upload's name: {name!r}")
        tmp = self.uploads_dir / f".{name}.part"
        tmp.write_bytes(data)
        tmp.replace(self.uploads_dir / name)

    def upload_path(self, name: str) -> Path | None:
        """The stored upload called `name`, or None if there is none (or the name is not ours)."""
        path = self.uploads_dir / name
        if not _STORED_NAME.fullmatch(name) or not path.is_file():
            return None
        return path


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
        "webhook": record.webhook,
        "model": record.model,
        "server": record.server,
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
        webhook=data.get("webhook") if isinstance(data.get("webhook"), str) else None,
        model=data.get("model") if isinstance(data.get("model"), str) else "",
        server=data.get("server") if isinstance(data.get("server"), str) else "",
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
